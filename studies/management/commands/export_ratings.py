"""Write a study's ratings in the long format that every analysis reads."""

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.exports import INCLUSION_CHOICES, write_ratings_csv
from studies.models import Study


class Command(BaseCommand):
    help = "Export ratings as long-format CSV: one row per participant × item × question."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--out", help="CSV file to write (default: standard output)")
        parser.add_argument(
            "--include",
            default="all",
            choices=sorted(INCLUSION_CHOICES),
            help="which participants: all (status and excluded are columns; default), completed, "
            "or included (completed and not excluded)",
        )

    def handle(self, *args, slug: str, out: str | None, include: str, **options) -> None:
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"no study with slug '{slug}'")
        if out:
            with open(out, "w", newline="", encoding="utf-8") as handle:
                count = write_ratings_csv(study, handle, include=include)
            self.stderr.write(f"{count} ratings written to {out}")
        else:
            write_ratings_csv(study, sys.stdout, include=include)
