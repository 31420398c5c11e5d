"""Write a study's stimuli (approved texts) as the CSV/JSONL file import_stimuli reads."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.models import Study
from studies.stimuli_export import EXPORT_FORMATS, write_stimuli


class Command(BaseCommand):
    help = (
        "Export a study's stimuli in the import format: one row per query, the approved text "
        "of each response type (empty where none is approved)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--out", help="file to write (default: standard output)")
        parser.add_argument(
            "--format",
            dest="export_format",
            choices=EXPORT_FORMATS,
            help="csv or jsonl (default: from --out's extension, else csv)",
        )

    def handle(
        self, *args, slug: str, out: str | None, export_format: str | None, **options
    ) -> None:
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"no study with slug '{slug}'")
        if export_format is None:
            # --out stimuli.jsonl means JSONL without saying so twice.
            suffix = Path(out).suffix.lower().lstrip(".") if out else ""
            export_format = suffix if suffix in EXPORT_FORMATS else "csv"
        if out:
            try:
                with open(out, "w", newline="", encoding="utf-8") as handle:
                    count = write_stimuli(study, handle, export_format)
            except OSError as exc:
                raise CommandError(f"cannot write {out}: {exc.strerror or exc}") from None
            self.stderr.write(f"{count} queries written to {out}")
        else:
            # The file's own line ends only: no newline added after each piece.
            self.stdout.ending = ""
            write_stimuli(study, self.stdout, export_format)
