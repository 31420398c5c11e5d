"""Errors raised by study services, each with a message a researcher can act on."""


class StudyStateError(Exception):
    """The study's status does not allow this change (e.g. editing a live study's design)."""


class LaunchRefused(Exception):
    def __init__(self, reasons: list[str]):
        super().__init__("cannot launch:\n" + "\n".join(f"- {reason}" for reason in reasons))
        self.reasons = reasons
