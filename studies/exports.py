"""A study's data written out as CSV: ratings in the long format and questionnaire-block answers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import TextIO

from annotation import selectors as annotation_selectors
from studies.domain import DEFAULT_INCLUSION, INCLUSION_RULES
from studies.models import Study

# Which participants an export or analysis counts, by rule name (first: the default).
INCLUSION_CHOICES: dict[str, str] = INCLUSION_RULES


def _write(handle: TextIO, columns: Sequence[str], rows: Iterable[dict]) -> int:
    writer = csv.DictWriter(handle, fieldnames=list(columns))
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count


def _stream(columns: Sequence[str], rows: Iterable[dict]) -> Iterator[str]:
    """CSV in pieces, so a download starts at once instead of waiting for the end."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns))
    writer.writeheader()
    for n, row in enumerate(rows, 1):
        writer.writerow(row)
        if n % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_ratings_csv(study: Study, handle: TextIO, *, include: str = DEFAULT_INCLUSION) -> int:
    """Write every rating as one long-format row; returns the number of rows written."""
    return _write(
        handle,
        annotation_selectors.long_format_columns(study),
        annotation_selectors.ratings_long_format(study, include),
    )


def stream_ratings_csv(study: Study, *, include: str = DEFAULT_INCLUSION) -> Iterator[str]:
    """The ratings CSV in pieces, for a streamed download."""
    return _stream(
        annotation_selectors.long_format_columns(study),
        annotation_selectors.ratings_long_format(study, include),
    )


def write_block_answers_csv(
    study: Study, handle: TextIO, *, include: str = DEFAULT_INCLUSION
) -> int:
    """Write every questionnaire-block answer (participant × block question); returns the rows."""
    return _write(
        handle,
        annotation_selectors.BLOCK_ANSWER_COLUMNS,
        annotation_selectors.block_answers_rows(study, include),
    )


def stream_block_answers_csv(study: Study, *, include: str = DEFAULT_INCLUSION) -> Iterator[str]:
    """The block-answers CSV in pieces, for a streamed download."""
    return _stream(
        annotation_selectors.BLOCK_ANSWER_COLUMNS,
        annotation_selectors.block_answers_rows(study, include),
    )
