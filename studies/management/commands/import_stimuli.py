"""Import a study's queries, scenarios and written responses from a CSV or JSONL file."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies import services
from studies.access import Action
from studies.errors import StudyStateError
from studies.management.commands._as_user import actor_from, add_as_argument, study_for
from studies.stimuli_file import StimuliFileError, stream_stimuli_file


class Command(BaseCommand):
    help = "Import stimuli (wide CSV/JSONL: one row per query) into a draft study, as USER."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("file")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="swap the study's stimuli for the file's (queries not in the file are removed)",
        )
        add_as_argument(parser)

    def handle(self, *args, slug: str, file: str, replace: bool, **options) -> None:
        actor = actor_from(options)
        study = study_for(actor, slug, Action.EDIT)
        # The file is read as it is imported, one batch of rows at a time; a problem anywhere
        # in it rolls the whole import back.
        rows = stream_stimuli_file(file)
        try:
            summary = services.import_stimuli(study=study, rows=rows, replace=replace, actor=actor)
        except StimuliFileError as exc:
            raise CommandError(f"{file}:\n" + "\n".join(exc.problems)) from exc
        except StudyStateError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{slug}: {summary.created} queries created, {summary.updated} updated, "
            f"{summary.removed} removed"
        )
