"""Export speed and peak memory of the ratings table (CSV, Parquet) against PostgreSQL's own COPY.

    .venv/bin/python bench/export_speed.py                       # 100,000 and 1,000,000 ratings
    .venv/bin/python bench/export_speed.py --sizes 1000000 --repeat 3

Uses its own database (--database, default refusallab_exportbench on the DATABASE_URL's
server; created and migrated when missing). Each size is one launched seed-design study whose
participants, trials and ratings are generated in SQL with generate_series (seconds, not an
hour of page submissions); a study already holding the ratings is reused.

Every measurement runs in a fresh child process, so one run's peak resident set (ru_maxrss,
read with os.wait4) cannot hide another's:
  copy     COPY (<the export's own SELECT of the ratings>) TO STDOUT WITH CSV into a file:
           PostgreSQL's own speed on the same rows, joins and order
  csv      build_export(tables=ratings, format=csv) into a folder: the COPY of the formatted
           SELECT, the codebook and the SHA-256 manifest
  parquet  the same with format=parquet (COPY to a scratch CSV, pyarrow's streaming reader,
           record batches into a ParquetWriter)
Times are of the work itself inside the child (Django start-up excluded); best of --repeat.
The speed ratio is COPY's time / the export's time (1.0 = as fast as COPY).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _database_url(name: str) -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/refusallab")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"], env=env, check=True
    )


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    import django

    django.setup()


# --- data ----------------------------------------------------------------------------------


def _generate(slug: str, ratings: int) -> int:
    """A launched seed-design study with about ``ratings`` ratings; returns the exact count."""
    import dataclasses

    from django.db import connection, transaction

    from annotation.models import Participant, Rating, Trial
    from studies import services
    from studies.models import Study
    from studies.spec import load_spec_file
    from studies.stimuli_file import read_stimuli_file

    study = Study.objects.filter(slug=slug).first()
    if study is not None:
        count = Rating.objects.filter(participant__study=study).count()
        if count >= ratings:
            return count
        # Half-made by an interrupted run: start its participants again.
        Rating.objects.filter(participant__study=study).delete()
        Trial.objects.filter(participant__study=study).delete()
        Participant.objects.filter(study=study).delete()
    else:
        spec, stimuli = load_spec_file(ROOT / "examples" / "refusal-perception" / "study.yaml")
        spec = dataclasses.replace(spec, slug=slug, target_participants=480)
        study = services.import_study(spec=spec, stimuli=read_stimuli_file(stimuli))
        services.launch_study(study=study)
    slots = list(study.slots.values_list("pk", flat=True))
    questions = study.questions.filter(block__isnull=True, is_attention_check=False).count()
    items = study.items_per_participant
    checks = study.questions.filter(is_attention_check=True).count()
    participants = math.ceil(ratings / (items * questions + checks))
    template = Participant.objects.create(study=study, pseudonym="template", status="completed")
    columns = [f.column for f in Participant._meta.concrete_fields if f.column != "id"]
    overrides = {
        "pseudonym": "md5('bench-' || i)",
        "slot_id": f"(ARRAY{slots})[1 + mod(i, {len(slots)})]",
        "recruitment": """'{"study": "bench", "session": "s"}'::jsonb""",
        "created_at": "now() - interval '2 hours'",
        "consented_at": "now() - interval '2 hours' + interval '30 seconds'",
        "completed_at": "now() - interval '1 hour'",
        "device_class": "'desktop'",
    }
    select = ", ".join(overrides.get(c, f't."{c}"') for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO annotation_participant ({names}) "
            f"SELECT {select} FROM annotation_participant t, generate_series(1, %s) i "
            "WHERE t.id = %s",
            [participants, template.pk],
        )
        template.delete()
        cursor.execute(
            """
            INSERT INTO annotation_trial (participant_id, slot_item_id, position, query_id,
                variant_id, shown_at, answered_at, ms_on_page, submission_id)
            SELECT p.id, si.id, si.position,
                CASE WHEN si.kind = 'stimulus' THEN COALESCE(si.query_id, (
                    SELECT q.id FROM studies_query q
                    WHERE q.study_id = p.study_id AND q.category = si.category
                    ORDER BY q.id OFFSET p.id %% 4 LIMIT 1)) END,
                NULL,
                p.consented_at + si.position * interval '20 seconds',
                p.consented_at + si.position * interval '20 seconds' + interval '15.25 seconds',
                15000 + (p.id * 7 + si.position) %% 5000, NULL
            FROM annotation_participant p JOIN annotation_slotitem si ON si.slot_id = p.slot_id
            WHERE p.study_id = %s
            """,
            [study.pk],
        )
        cursor.execute(
            """
            INSERT INTO annotation_rating (participant_id, trial_id, question_id, value, created_at)
            SELECT t.participant_id, t.id, qu.id, 1 + (t.id * 31 + qu.id * 17) %% 7, t.answered_at
            FROM annotation_trial t
            JOIN annotation_participant p ON p.id = t.participant_id
            JOIN annotation_slotitem si ON si.id = t.slot_item_id
            JOIN studies_question qu ON qu.study_id = p.study_id AND qu.block_id IS NULL AND (
                (si.kind = 'stimulus' AND NOT qu.is_attention_check)
                OR (si.kind = 'attention' AND qu.id = si.attention_check_id))
            WHERE p.study_id = %s
            """,
            [study.pk],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return Rating.objects.filter(participant__study=study).count()


# --- one measurement (child process) ---------------------------------------------------------


def _child(kind: str, slug: str, out: Path) -> dict:
    from studies.datasets import writers
    from studies.datasets.exports import ExportOptions, build_export, postgres_reader, zip_folder
    from studies.datasets.tables import build_tables
    from studies.models import Study

    study = Study.objects.get(slug=slug)
    started = time.perf_counter()
    if kind == "copy":
        table = build_tables(study, ("ratings",))[0]
        with postgres_reader() as pg, open(out / "copy.csv", "wb") as handle:
            statement = writers.sql.SQL("COPY ({}) TO STDOUT WITH CSV HEADER").format(
                table.typed_select()
            )
            with pg.cursor() as cursor, cursor.copy(statement) as copy:
                for data in copy:
                    handle.write(data)
        rows, zipped = None, None
    else:
        reported = []  # a progress callback, as the job's (which also writes its row)
        built = build_export(
            study,
            out,
            ExportOptions(tables=("ratings",), export_format=kind),
            on_total=reported.append,
            progress=reported.append,
        )
        rows = sum(built.rows.values())
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    if kind != "copy":
        # What a job does next: one zip of the folder (deflate level 1; Parquet stored).
        started = time.perf_counter()
        zip_folder(out, built.files, out.parent / f"{out.name}.zip", "export")
        zipped = round(time.perf_counter() - started, 3)
        (out.parent / f"{out.name}.zip").unlink()
    return {"seconds": round(seconds, 3), "rows": rows, "bytes": size, "zip_s": zipped}


def _measure(kind: str, slug: str, url: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="export-bench-") as scratch:
        env = {**os.environ, "DATABASE_URL": url}
        process = subprocess.Popen(
            [sys.executable, __file__, "--child", kind, slug, scratch],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        stdout = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"{kind} on {slug} failed")
        result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", default="refusallab_exportbench")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "SLUG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _setup_django()
        kind, slug, out = args.child
        print(json.dumps(_child(kind, slug, Path(out))))
        return
    url = _database_url(args.database)
    _ensure_database(url)
    os.environ["DATABASE_URL"] = url
    _setup_django()
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        slug = f"bench-export-{size}"
        started = time.perf_counter()
        count = _generate(slug, size)
        print(
            f"# {slug}: {count} ratings ready in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        runs: dict[str, list[dict]] = {k: [] for k in ("copy", "csv", "parquet")}
        for _ in range(args.repeat):
            for kind in runs:  # interleaved, so a busy moment hits every kind alike
                runs[kind].append(_measure(kind, slug, url))
        best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
        copy_s = best["copy"]["seconds"]
        for kind in ("copy", "csv", "parquet"):
            row = {
                "ratings": count,
                "kind": kind,
                "best_s": best[kind]["seconds"],
                "all_s": [r["seconds"] for r in runs[kind]],
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[kind]),
                "megabytes": round(best[kind]["bytes"] / 1e6, 1),
                "speed_vs_copy": round(copy_s / best[kind]["seconds"], 2),
                "zip_s": best[kind]["zip_s"],
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    print(
        f"\n| ratings | export | best of {args.repeat} (s) | runs (s) | peak RSS (MB) "
        "| output (MB) | speed vs COPY | then zipped (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['ratings']:,} | {r['kind']} | {r['best_s']} | {', '.join(map(str, r['all_s']))} "
            f"| {r['peak_rss_mb']} | {r['megabytes']} | {r['speed_vs_copy']} "
            f"| {r['zip_s'] if r['zip_s'] is not None else '—'} |"
        )


if __name__ == "__main__":
    main()
