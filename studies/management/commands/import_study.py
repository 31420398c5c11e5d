"""Create or update a draft study from a spec file (and its stimuli file, if the spec names one)."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies import services
from studies.access import Action
from studies.errors import StudyStateError
from studies.management.commands._as_user import actor_from, add_as_argument, study_for
from studies.models import Study
from studies.spec import SpecError, load_spec_file
from studies.stimuli_file import StimuliFileError, read_stimuli_file


class Command(BaseCommand):
    help = (
        "Import a study spec (YAML/JSON) as USER, who owns a new study and must be able to "
        "edit an existing one; prints the study's slug."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("spec", help="path to the study spec file")
        add_as_argument(parser)

    def handle(self, *args, spec: str, **options) -> None:
        actor = actor_from(options)
        try:
            parsed, stimuli_path = load_spec_file(spec)
            rows = read_stimuli_file(stimuli_path) if stimuli_path else None
        except SpecError as exc:
            raise CommandError(str(exc)) from exc
        except StimuliFileError as exc:
            raise CommandError(f"{stimuli_path}:\n" + "\n".join(exc.problems)) from exc
        except OSError as exc:
            raise CommandError(f"cannot read {exc.filename}: {exc.strerror}") from exc
        if Study.objects.filter(slug=parsed.slug).exists():
            # Updating a study is an edit of it; creating one makes the actor its owner.
            study_for(actor, parsed.slug, Action.EDIT)
        try:
            study = services.import_study(spec=parsed, stimuli=rows, actor=actor)
        except StudyStateError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(study.slug)
