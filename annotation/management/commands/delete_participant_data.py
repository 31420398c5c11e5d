"""Delete, on a person's request, the answers of the participant with a recruitment id."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation import services
from studies.access import Action
from studies.management.commands._as_user import actor_from, add_as_argument, study_for


class Command(BaseCommand):
    help = (
        "Withdraw the participant of study SLUG with this recruitment id and delete their "
        "answers (ratings, trials, questionnaire answers), as USER (an owner of the study). "
        "The audit log names their pseudonym, never the id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "--recruitment-id",
            required=True,
            metavar="ID",
            help="the participant id on the recruitment platform (e.g. their Prolific ID)",
        )
        add_as_argument(parser)

    def handle(self, *args, slug: str, recruitment_id: str, **options) -> None:
        actor = actor_from(options)
        study = study_for(actor, slug, Action.SEE_RECRUITMENT_IDS)
        try:
            participant = services.delete_participant_data(
                study=study, recruitment_id=recruitment_id, actor=actor
            )
        except services.ParticipantNotFound as exc:
            raise CommandError(f"nothing deleted: {exc}") from exc
        self.stdout.write(
            f"participant {participant.pseudonym[:16]} of {slug} is withdrawn and their "
            "answers are deleted"
        )
