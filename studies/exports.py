"""A study's ratings written out in the platform's long format (CSV), for files and downloads."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import TextIO

from annotation import selectors as annotation_selectors
from studies.models import Study

INCLUSION_CHOICES: dict[str, tuple[str, ...] | None] = {
    "completed": ("completed",),
    "all": None,
}


def write_ratings_csv(study: Study, handle: TextIO, *, include: str = "all") -> int:
    """Write every rating as one long-format row; returns the number of rows written."""
    writer = csv.DictWriter(handle, fieldnames=annotation_selectors.long_format_columns(study))
    writer.writeheader()
    count = 0
    for row in annotation_selectors.ratings_long_format(study, INCLUSION_CHOICES[include]):
        writer.writerow(row)
        count += 1
    return count


def stream_ratings_csv(study: Study, *, include: str = "all") -> Iterator[str]:
    """The same CSV in pieces, so a download starts at once instead of waiting for the end."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=annotation_selectors.long_format_columns(study))
    writer.writeheader()
    for n, row in enumerate(
        annotation_selectors.ratings_long_format(study, INCLUSION_CHOICES[include]), 1
    ):
        writer.writerow(row)
        if n % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
