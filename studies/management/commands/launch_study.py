"""Build a study's participant plan and open it, or say why it cannot run."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies import lifecycle
from studies.access import Action
from studies.errors import LaunchRefused, StudyStateError
from studies.management.commands._as_user import actor_from, add_as_argument, study_for


class Command(BaseCommand):
    help = "Launch a study as USER: checks it can run, creates its participant slots, sets it live."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "--pilot",
            type=int,
            metavar="N",
            help="launch a pilot with N slots only (the full launch follows from the study page)",
        )
        add_as_argument(parser)

    def handle(self, *args, slug: str, pilot: int | None, **options) -> None:
        actor = actor_from(options)
        study = study_for(actor, slug, Action.EDIT)
        try:
            slots = lifecycle.launch_study(study=study, actor=actor, pilot_slots=pilot)
        except LaunchRefused as exc:
            raise CommandError(f"{slug} {exc}") from exc
        except StudyStateError as exc:
            raise CommandError(str(exc)) from exc
        kind = "pilot " if pilot else ""
        self.stdout.write(f"{slug} is live with {slots} {kind}participant slots")
