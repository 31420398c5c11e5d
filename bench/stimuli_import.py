"""Stimuli import speed: an N-row CSV through the import_stimuli command into a fresh draft.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/refusallab_bench \\
        python bench/stimuli_import.py [N] [--again]

N rows (14,000 by default), every response type filled, two metadata columns. The file is
written to a temporary directory and imported with ``manage.py import_stimuli`` (in this
process, through call_command: parsing, checks, writes and the audit row are all timed).
``--again`` also times importing the same file a second time (every query updated) and
once more with ``--replace``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SLUG = "bench-stimuli-import"
USERNAME = "bench-stimuli"


def write_csv(path: Path, n: int) -> None:
    from studies.domain import RESPONSE_TYPES, SAFETY_CATEGORIES

    columns = [
        "query_id",
        "query",
        "category",
        "topic",
        "benign_scenario",
        "malicious_scenario",
        *RESPONSE_TYPES,
        "source",
        "difficulty",
    ]
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for i in range(n):
            category = SAFETY_CATEGORIES[i % len(SAFETY_CATEGORIES)]
            writer.writerow(
                [
                    f"b{i:06d}",
                    f"Question {i}: how would someone go about topic {i % 97}, in detail?",
                    category,
                    f"topic {i % 97}",
                    "You are a student writing a report, and you want to understand the risks.",
                    "You are planning to cause harm, and you want step-by-step instructions.",
                    *(
                        f"A {t.replace('_', ' ')} answer to question {i}, a few sentences long, "
                        "as a model might write it, with a comma, and a second clause."
                        for t in RESPONSE_TYPES
                    ),
                    "bench",
                    ("easy", "hard")[i % 2],
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=14000)
    parser.add_argument("--again", action="store_true", help="also time an update and --replace")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database (it is migrated, and a study replaced)")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from studies import services
    from studies.models import Query, ResponseVariant, Study
    from studies.spec import load_spec_file

    call_command("migrate", verbosity=0)
    Study.objects.filter(slug=SLUG).delete()
    user, _ = get_user_model().objects.get_or_create(username=USERNAME)
    spec, _ = load_spec_file(ROOT / "examples" / "every-type" / "study.yaml")
    services.import_study(spec=dataclasses.replace(spec, slug=SLUG), actor=user)

    def timed(label: str, *extra: str) -> None:
        start = time.perf_counter()
        call_command(
            "import_stimuli", SLUG, str(path), *extra, "--as", USERNAME, stdout=io.StringIO()
        )
        seconds = time.perf_counter() - start
        print(
            f"{label}: {args.rows} rows in {seconds:.2f} s = {args.rows / seconds:,.0f} rows/s",
            flush=True,
        )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stimuli.csv"
        write_csv(path, args.rows)
        print(f"{path.stat().st_size / 1024 / 1024:.1f} MiB CSV, {args.rows} rows", flush=True)
        timed("fresh draft")
        if args.again:
            timed("same file again (every query updated)")
            timed("--replace", "--replace")
    study = Study.objects.get(slug=SLUG)
    assert Query.objects.filter(study=study).count() == args.rows
    assert ResponseVariant.objects.filter(query__study=study).count() == 5 * args.rows
    study.delete()


if __name__ == "__main__":
    main()
