"""Numbers and figures of a running study's dashboard, as plain JSON-able dicts.

Every participant is in exactly one state, so the funnel adds up:
``joined = not yet consented + in progress + completed + returned + timed out + declined
+ screened out + withdrawn`` and ``consented = joined − declined − not yet consented``.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from django.db.models import Count, F, Q
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from annotation.models import Participant, Rating, Slot, Trial
from annotation.selectors import quality_numbers
from studies.models import Study

P = Participant.Status

# The funnel's states in the order a participant meets them; each row says what it counts.
FUNNEL_STATES: tuple[tuple[str, str, str], ...] = (
    (
        "not_consented",
        "Not yet consented",
        "opened the link and have not yet agreed or declined (status active, no consent)",
    ),
    (
        "in_progress",
        "In progress",
        "agreed and are answering now, within their time limit (status active)",
    ),
    ("completed", "Completed", "answered every page (status completed)"),
    (
        "returned",
        "Returned",
        "gave their place back on the recruitment platform (status returned)",
    ),
    (
        "timed_out",
        "Timed out",
        "ran past the time limit after agreeing; their slot went back (status timed_out)",
    ),
    ("declined", "Declined", "did not agree to the consent form (status declined)"),
    (
        "screened_out",
        "Screened out",
        "ended early by the study's quality screen (status screened_out)",
    ),
    ("withdrawn", "Withdrawn", "withdrew from the study of their own accord (status withdrawn)"),
)
DERIVED_DEFINITIONS: dict[str, str] = {
    "joined": "every participant record: people who opened the recruitment link "
    "(= the sum of the states below)",
    "consented": "joined − declined − not yet consented: everyone who agreed to take part",
    "completion_rate": "completed ÷ consented",
}
# Longer than this between the first and the last arrival: count per day, not per hour.
HOURLY_SPAN = timedelta(hours=72)
# Keeps the timeline's payload small however long a study runs.
MAX_BUCKETS = 400


def _cell_label(cell: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(cell.items())) or "(single cell)"


def _quantiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "median": None, "p25": None, "p75": None, "min": None, "max": None}
    ordered = sorted(values)
    if len(ordered) > 1:
        p25, _, p75 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        p25 = p75 = ordered[0]
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 2),
        "p25": round(p25, 2),
        "p75": round(p75, 2),
        "min": round(ordered[0], 2),
        "max": round(ordered[-1], 2),
    }


def funnel(study: Study, *, pilot: bool | None = None) -> dict:
    """Counts per participant state (disjoint), with the derived joined and consented."""
    rows = Participant.objects.filter(study=study)
    if pilot is not None:
        rows = rows.filter(is_pilot=pilot)
    by_status = dict(rows.filter(~Q(status=P.ACTIVE)).values_list("status").annotate(n=Count("id")))
    active = rows.filter(status=P.ACTIVE).aggregate(
        not_consented=Count("id", filter=Q(consented_at__isnull=True)),
        in_progress=Count("id", filter=Q(consented_at__isnull=False)),
    )
    counts = {
        "not_consented": active["not_consented"],
        "in_progress": active["in_progress"],
        **{key: by_status.get(key, 0) for key, _, _ in FUNNEL_STATES[2:]},
    }
    joined = sum(counts.values())
    consented = joined - counts["declined"] - counts["not_consented"]
    return {
        **counts,
        "joined": joined,
        "consented": consented,
        "completion_rate": round(counts["completed"] / consented, 3) if consented else None,
    }


def _timeline(study: Study) -> dict:
    arrivals = Participant.objects.filter(study=study)
    first = arrivals.order_by("created_at").values_list("created_at", flat=True).first()
    if first is None:
        return {"bucket": "hour", "rows": []}
    last = max(
        arrivals.order_by("-created_at").values_list("created_at", flat=True).first(),
        arrivals.exclude(completed_at=None)
        .order_by("-completed_at")
        .values_list("completed_at", flat=True)
        .first()
        or first,
    )
    hourly = last - first <= HOURLY_SPAN
    trunc, step = (TruncHour, timedelta(hours=1)) if hourly else (TruncDay, timedelta(days=1))

    def per_bucket(field: str) -> Counter:
        # UTC buckets: every bucket is exactly one step long (no daylight-saving days).
        return Counter(
            dict(
                arrivals.exclude(**{field: None})
                .annotate(t=trunc(field, tzinfo=UTC))
                .values_list("t")
                .annotate(n=Count("id"))
                .values_list("t", "n")
            )
        )

    joined, completed = per_bucket("created_at"), per_bucket("completed_at")
    start, end = min(joined | completed), max(joined | completed)
    times: list[datetime] = []
    t = start
    while t <= end and len(times) < MAX_BUCKETS:
        times.append(t)
        t += step
    if times[-1] < end:
        times.append(end)  # a very long study: the last point closes the line
    running_joined = running_completed = 0
    out_joined, out_completed = [], []
    for t in times:
        running_joined += joined.get(t, 0)
        running_completed += completed.get(t, 0)
        out_joined.append(running_joined)
        out_completed.append(running_completed)
    # Buckets skipped by MAX_BUCKETS would be missing from the running totals: the last
    # point is always the true total.
    out_joined[-1] = sum(joined.values())
    out_completed[-1] = sum(completed.values())
    return {
        "bucket": "hour" if hourly else "day",
        "rows": [
            {"time": t.isoformat(), "joined": a, "completed": c}
            for t, a, c in zip(times, out_joined, out_completed, strict=True)
        ],
    }


def _cells(study: Study) -> list[dict]:
    cells: dict[str, dict] = defaultdict(
        lambda: {"target": 0, "completed": 0, "claimed": 0, "free": 0, "pilot": 0}
    )
    for cell, status, is_pilot, n in (
        Slot.objects.filter(study=study)
        .values_list("cell", "status", "is_pilot")
        .annotate(n=Count("id"))
    ):
        row = cells[_cell_label(cell)]
        row[status] += n
        row["target"] += n
        row["pilot"] += n if is_pilot else 0
    return [
        {
            "cell": label,
            **row,
            "fill": round(row["completed"] / row["target"], 3) if row["target"] else None,
        }
        for label, row in sorted(cells.items())
    ]


def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / 60


def _completion_minutes(study: Study, pilot: bool | None = None) -> list[float]:
    rows = Participant.objects.filter(study=study, status=P.COMPLETED)
    if pilot is not None:
        rows = rows.filter(is_pilot=pilot)
    values = (_minutes(s, e) for s, e in rows.values_list("consented_at", "completed_at"))
    return [round(v, 2) for v in values if v is not None and v >= 0]


def _time_per_item(study: Study) -> dict:
    """Seconds on each answered page: the page's own timer, else answered − shown."""
    per_position: dict[int, list[float]] = defaultdict(list)
    rows = (
        Trial.objects.filter(participant__study=study, answered_at__isnull=False)
        .values_list("position", "slot_item__kind", "ms_on_page", "shown_at", "answered_at")
        .iterator(chunk_size=5000)
    )
    kinds: dict[int, str] = {}
    for position, kind, ms, shown, answered in rows:
        if ms is None and shown is not None:
            ms = (answered - shown).total_seconds() * 1000
        if ms is None or ms < 0:
            continue
        per_position[position].append(ms / 1000)
        kinds[position] = kind
    every = [s for values in per_position.values() for s in values]
    return {
        "overall": _quantiles(every),
        "positions": [
            {"position": p, "kind": kinds[p], **_quantiles(per_position[p])}
            for p in sorted(per_position)
        ],
    }


def _attention(study: Study) -> dict:
    checks = list(
        study.questions.filter(is_attention_check=True)
        .order_by("order")
        .values("pk", "key", "correct_value")
    )
    answered = Rating.objects.filter(participant__study=study, question__is_attention_check=True)
    counts = dict(answered.values_list("question_id").annotate(n=Count("id")))
    failed_rows = answered.exclude(value=F("question__correct_value"))
    failed = dict(failed_rows.values_list("question_id").annotate(n=Count("id")))
    return {
        "checks": [
            {
                "key": c["key"],
                "correct": c["correct_value"],
                "answered": counts.get(c["pk"], 0),
                "failed": failed.get(c["pk"], 0),
            }
            for c in checks
        ],
        "participants_answered": answered.values("participant_id").distinct().count(),
        "participants_failing": failed_rows.values("participant_id").distinct().count(),
    }


def _pilot_vs_full(study: Study) -> list[dict]:
    out = []
    for key, label, pilot in (("pilot", "Pilot", True), ("full", "Full launch", False)):
        numbers = funnel(study, pilot=pilot)
        minutes = _quantiles(_completion_minutes(study, pilot=pilot))
        out.append(
            {
                "group": key,
                "label": label,
                "joined": numbers["joined"],
                "consented": numbers["consented"],
                "completed": numbers["completed"],
                "median_minutes": minutes["median"],
            }
        )
    return out


def dashboard_numbers(study: Study) -> dict:
    """Everything the live dashboard shows, as plain JSON-able data."""
    slots = dict(Slot.objects.filter(study=study).values_list("status").annotate(n=Count("id")))
    minutes = _completion_minutes(study)
    numbers = funnel(study)
    return {
        "study": study.slug,
        "status": study.status,
        "generated_at": timezone.now().isoformat(),
        "target": study.target_participants,
        "pilot_slots": study.pilot_slots,
        "slots": {
            "total": sum(slots.values()),
            "free": slots.get(Slot.Status.FREE, 0),
            "claimed": slots.get(Slot.Status.CLAIMED, 0),
            "completed": slots.get(Slot.Status.COMPLETED, 0),
        },
        "funnel": numbers,
        "funnel_states": [
            {"key": key, "label": label, "count": numbers[key], "definition": definition}
            for key, label, definition in FUNNEL_STATES
        ],
        "definitions": DERIVED_DEFINITIONS,
        "timeline": _timeline(study),
        "cells": _cells(study),
        "completion_minutes": {**_quantiles(minutes), "values": minutes},
        "time_per_item": _time_per_item(study),
        "attention": _attention(study),
        "pilot_vs_full": _pilot_vs_full(study),
        # Quality flags and exclusion decisions (studies.datasets.quality, the participants page).
        "quality": quality_numbers(study),
    }


def study_progress(study: Study) -> dict:
    """The few counts the study list shows for each study."""
    numbers = funnel(study)
    return {
        "study": study,
        "joined": numbers["joined"],
        "consented": numbers["consented"],
        "completed": numbers["completed"],
        "funnel": numbers,
    }


# --- figures (Plotly's JSON: {"data": [...], "layout": {...}}, drawn by dashboard.js) ---------

_LAYOUT = {
    "margin": {"l": 50, "r": 10, "t": 40, "b": 50},
    "height": 300,
    "font": {"family": "system-ui, sans-serif", "size": 13},
    "legend": {"orientation": "h", "y": -0.25},
}


def _figure(title: str, data: list[dict], **layout) -> dict:
    return {"data": data, "layout": {**_LAYOUT, "title": {"text": title}, **layout}}


def dashboard_figures(numbers: dict) -> dict[str, dict]:
    """One Plotly figure per dashboard panel, from dashboard_numbers' output."""
    timeline = numbers["timeline"]
    times = [row["time"] for row in timeline["rows"]]
    states = numbers["funnel_states"]
    cells = numbers["cells"]
    per_item = numbers["time_per_item"]["positions"]
    checks = numbers["attention"]["checks"]
    return {
        "timeline": _figure(
            f"Arrivals and completions (running totals, per {timeline['bucket']})",
            [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "line": {"shape": "hv"},
                    "name": "joined",
                    "x": times,
                    "y": [row["joined"] for row in timeline["rows"]],
                },
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "line": {"shape": "hv"},
                    "name": "completed",
                    "x": times,
                    "y": [row["completed"] for row in timeline["rows"]],
                },
            ],
        ),
        "funnel": _figure(
            f"Where the {numbers['funnel']['joined']} who joined are now",
            [
                {
                    "type": "bar",
                    "orientation": "h",
                    "x": [s["count"] for s in states],
                    "y": [s["label"] for s in states],
                    "text": [s["count"] for s in states],
                    "textposition": "auto",
                    "hovertext": [s["definition"] for s in states],
                }
            ],
            yaxis={"autorange": "reversed", "automargin": True},
        ),
        "cells": _figure(
            "Slots per between-participants cell",
            [
                {
                    "type": "bar",
                    "name": name,
                    "x": [c["cell"] for c in cells],
                    "y": [c[key] for c in cells],
                }
                for key, name in (
                    ("completed", "completed"),
                    ("claimed", "in progress"),
                    ("free", "free"),
                )
            ],
            barmode="stack",
            xaxis={"automargin": True},
        ),
        "completion": _figure(
            "Completion time (minutes, consent to last page)",
            [
                {
                    "type": "histogram",
                    "x": numbers["completion_minutes"]["values"],
                    "name": "participants",
                }
            ],
            xaxis={"title": {"text": "minutes"}},
            yaxis={"title": {"text": "participants"}},
        ),
        "items": _figure(
            "Median time per page (seconds)",
            [
                {
                    "type": "bar",
                    "x": [p["position"] for p in per_item],
                    "y": [p["median"] for p in per_item],
                    "hovertext": [f"{p['kind']}, n={p['n']}" for p in per_item],
                }
            ],
            xaxis={"title": {"text": "page (item position)"}, "dtick": 1},
            yaxis={"title": {"text": "seconds"}},
        ),
        "attention": _figure(
            "Attention checks",
            [
                {
                    "type": "bar",
                    "name": "answered",
                    "x": [c["key"] for c in checks],
                    "y": [c["answered"] for c in checks],
                },
                {
                    "type": "bar",
                    "name": "failed",
                    "x": [c["key"] for c in checks],
                    "y": [c["failed"] for c in checks],
                },
            ],
            barmode="group",
        ),
    }
