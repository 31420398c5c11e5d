"""False-refusal rates (full, full + partial, Wilson 95% CIs) of a labelled CSV/JSONL file."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from modellab.classifiers.labels import to_three_way
from modellab.false_refusal.rates import GroupRates, format_rate, rates_by_group
from modellab.table_file import TableFileError, read_upload


def render_table(rows: list[GroupRates], group_column: str | None) -> str:
    """The rates as a fixed-width table a terminal shows well."""
    header = [group_column or "group", "n", "full refusal", "FRR full [95% CI]"]
    header += ["full+partial", "FRR full+partial [95% CI]", "unparsed"]
    body = [
        [
            r.group,
            str(r.n),
            str(r.full_refusal),
            format_rate(r.full),
            str(r.full_refusal + r.partial_refusal),
            format_rate(r.full_or_partial),
            str(r.unparsed),
        ]
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        # Text left, numbers right.
        parts = [cells[0].ljust(widths[0])]
        parts += [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(cells) for cells in body)])


class Command(BaseCommand):
    help = (
        "Print, per group, n and the false-refusal rate (full refusal; full + partial refusal) "
        "with Wilson 95%% CIs, from a CSV or JSONL file with one label per row. Labels: "
        "full_compliance / full_refusal / partial_refusal, the five response types, or "
        "PHTest's 1_full_compliance / 2_full_refusal / 3_partial_refusal; 'unparsed' is "
        "counted but left out of n."
    )
    requires_system_checks: list = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--input", required=True, metavar="FILE", help="a .csv or .jsonl file")
        parser.add_argument("--label-column", required=True, metavar="C")
        parser.add_argument(
            "--group-column", metavar="C", help="e.g. Harmfulness: one row of rates per value"
        )
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args, **options) -> None:
        path = Path(options["input"])
        label_column, group_column = options["label_column"], options["group_column"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            table = read_upload(data, path.name).as_text()
            table.require(label_column, group_column or "")
        except TableFileError as exc:
            raise CommandError(f"{path}: {exc}") from None
        pairs = []
        for row in table.records:
            label = row.values[label_column].strip()
            group = row.values[group_column].strip() if group_column else "all"
            if not label:
                raise CommandError(f"{path}: line {row.line}: the label ({label_column}) is empty")
            if group_column and not group:
                raise CommandError(f"{path}: line {row.line}: the group ({group_column}) is empty")
            try:
                to_three_way(label)
            except ValueError as exc:
                raise CommandError(
                    f"{path}: line {row.line}, column {label_column!r}: {exc}"
                ) from None
            pairs.append((group, label))
        rows = rates_by_group(pairs)
        if options["json"]:
            payload = {
                "input": str(path),
                "label_column": label_column,
                "group_column": group_column,
                "confidence": 0.95,
                "method": "wilson",
                "groups": [r.to_dict() for r in rows],
            }
            self.stdout.write(json.dumps(payload, indent=2))
            return
        self.stdout.write(render_table(rows, group_column))
        unparsed = sum(r.unparsed for r in rows)
        if unparsed:
            self.stdout.write(f"{unparsed} unparsed label(s) counted above and left out of n.")
