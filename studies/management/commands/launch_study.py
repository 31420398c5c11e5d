"""Build a study's participant plan and open it, or say why it cannot run."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies import services
from studies.errors import LaunchRefused
from studies.models import Study


class Command(BaseCommand):
    help = "Launch a study: checks it can run, creates its participant slots, sets it live."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")

    def handle(self, *args, slug: str, **options) -> None:
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"no study with slug '{slug}'")
        try:
            slots = services.launch_study(study=study)
        except LaunchRefused as exc:
            raise CommandError(f"{slug} {exc}") from exc
        self.stdout.write(f"{slug} is live with {slots} participant slots")
