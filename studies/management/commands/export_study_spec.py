"""Write a study's spec back out as YAML (the same format import_study reads)."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies import selectors
from studies.models import Study
from studies.spec import dump_spec


class Command(BaseCommand):
    help = "Export a study's spec as YAML to stdout or --out FILE."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--out", help="write to this file instead of standard output")

    def handle(self, *args, slug: str, out: str | None, **options) -> None:
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"no study with slug '{slug}'")
        text = dump_spec(selectors.study_spec(study))
        if out:
            with open(out, "w", encoding="utf-8") as handle:
                handle.write(text)
        else:
            self.stdout.write(text, ending="")
