"""Errors the participant flow turns into pages a participant can understand."""


class StudyFull(Exception):
    """Every slot of the study's plan is taken."""


class StudyNotOpen(Exception):
    """The study is not accepting participants (not live, paused or closed)."""


class AnswersInvalid(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))
        self.errors = errors


class TopicInvalid(Exception):
    """The chosen topic is not on offer for this item (wrong category or already used)."""


class ParticipationEnded(Exception):
    """The participant finished, timed out or was excluded: they cannot start again."""
