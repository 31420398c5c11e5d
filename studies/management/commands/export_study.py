"""Export a study's data: tables with their codebook, or the whole replication package."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.datasets.exports import ExportOptions, ExportRefused, export_to_path
from studies.datasets.tables import TABLE_NAMES
from studies.datasets.writers import FORMATS
from studies.domain import DEFAULT_INCLUSION, INCLUSION_RULES
from studies.models import Study
from studies.services import record_audit


class Command(BaseCommand):
    # The system checks import every view (plotly, pandas): seconds and 100+ MB an export of
    # data does not need.
    requires_system_checks: list[str] = []
    help = (
        "Export a study's tables (ratings, participants, stimuli, trials, block answers) with "
        "their codebook and a SHA-256 manifest, or with --package the replication package; "
        "--out ending in .zip writes one zip, anything else a folder. Participants appear only "
        "under their pseudonym."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--out", required=True, help="a .zip file, or a folder")
        parser.add_argument("--format", dest="export_format", choices=FORMATS, default="csv")
        parser.add_argument(
            "--include",
            choices=list(INCLUSION_RULES),
            default=DEFAULT_INCLUSION,
            help="which participants: included (completed, not excluded; default), completed "
            "or all (withdrawn participants never)",
        )
        parser.add_argument(
            "--tables",
            default=",".join(TABLE_NAMES),
            help=f"comma-separated, from {', '.join(TABLE_NAMES)} (default: all)",
        )
        parser.add_argument(
            "--package",
            action="store_true",
            help="the replication package: spec, stimuli, every table, codebook, analysis "
            "(JSON and HTML report), README and manifest",
        )

    def handle(
        self,
        *args,
        slug: str,
        out: str,
        export_format: str,
        include: str,
        tables: str,
        package: bool,
        **options,
    ) -> None:
        study = Study.objects.filter(slug=slug).first()
        if study is None:
            raise CommandError(f"no study with slug '{slug}'")
        chosen = tuple(t.strip() for t in tables.split(",") if t.strip())
        export = ExportOptions(chosen, export_format, include, package)
        try:
            export = export.checked()
        except ExportRefused as exc:
            raise CommandError(str(exc)) from exc
        record_audit(
            study=study,
            action="export_requested",
            via="export_study command",
            tables=list(export.tables),
            format=export_format,
            inclusion=include,
            package=package,
            recruitment_ids=False,
            out=str(out),
        )
        try:
            built = export_to_path(study, Path(out), export)
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc.strerror or exc}") from exc
        rows = sum(built.rows.values())
        what = "replication package" if package else "export"
        self.stdout.write(
            f"{what} of {slug} written to {out}: {rows} rows in {len(built.rows)} tables"
        )
