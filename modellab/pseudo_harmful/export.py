"""A pseudo-harmful job's final set as CSV or JSONL in PHTest's layout, then its provenance."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict

from modellab.classifiers.labels import FULL_REFUSAL, PARTIAL_REFUSAL, UNPARSED, to_three_way
from modellab.models.material import PseudoHarmfulJob, PseudoHarmfulProbe
from modellab.pseudo_harmful.outcome import final_candidates, prompt_id, stable_id

#: PHTest's three columns first (same names, same values: harmless / controversial), then ours.
PHTEST_COLUMNS: tuple[str, ...] = ("ID", "Request", "Harmfulness")
COLUMNS: tuple[str, ...] = (
    *PHTEST_COLUMNS,
    "category",
    "topic",
    "words",
    "seed",
    "generator",
    "round",
    "target_refusals",
    "refusal_share",
    "rank",
    "judge_label",
    "judge_rationale",
    "human_label",
    "final_source",
)


class NotFinalised(ValueError):
    """The job has no final set yet."""


def target_refusals(counts: dict[str, tuple[int, int, int]]) -> str:
    """``model: full/partial/of n; …`` per target, by model name (n: labelled responses)."""
    return "; ".join(
        f"{model}: {full}/{partial}/of {n}" for model, (full, partial, n) in sorted(counts.items())
    )


def _refusal_counts(candidate_ids: list[int]) -> dict[int, dict[str, tuple[int, int, int]]]:
    """Candidate → target name → (full refusals, partial refusals, labelled responses)."""
    tallies: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    probes = PseudoHarmfulProbe.objects.filter(
        candidate_id__in=candidate_ids, status=PseudoHarmfulProbe.Status.DONE
    ).values_list("candidate_id", "model__name", "label")
    for candidate_id, model, label in probes:
        tally = tallies[candidate_id][model]
        three_way = to_three_way(label) if label else UNPARSED
        if three_way == UNPARSED:
            continue
        tally[2] += 1
        tally[0] += three_way == FULL_REFUSAL
        tally[1] += three_way == PARTIAL_REFUSAL
    return {
        cid: {model: tuple(t) for model, t in by_model.items()} for cid, by_model in tallies.items()
    }


def _seed_names(job: PseudoHarmfulJob, ids: dict[int, str]) -> dict[int, str]:
    """Round number → the examples it showed the generator: ``seed#i`` for the researcher's
    i-th seed example, a prompt ID for an earlier candidate."""
    seed_texts = {}
    for i, example in enumerate(job.seed.get("examples", []) or [], 1):
        text = example.get("text", "") if isinstance(example, dict) else str(example)
        seed_texts.setdefault(text.strip(), i)
    names: dict[int, str] = {}
    for number, examples in job.round_set.values_list("number", "examples"):
        shown = []
        for example in examples or []:
            if not isinstance(example, dict):
                continue
            source = example.get("source")
            if source == "seed":
                text = str(example.get("text") or example.get("prompt") or "").strip()
                shown.append(f"seed#{seed_texts[text]}" if text in seed_texts else "seed")
            elif isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
                shown.append(ids.get(int(source), f"candidate {source}"))
        names[number] = "; ".join(shown)
    return names


def export_rows(job: PseudoHarmfulJob) -> list[dict]:
    """The final set's rows in its order, every column of COLUMNS (numbers as numbers)."""
    if job.prompt_set_id is None:
        raise NotFinalised("the job has no final set yet; finalise it first")
    candidates = list(final_candidates(job))
    all_ids = {
        pk: stable_id(job.pk, position)
        for pk, position in job.candidates.values_list("pk", "position")
    }
    refusals = _refusal_counts([c.pk for c in candidates])
    seeds = _seed_names(job, all_ids)
    generator = job.generator.name
    return [
        {
            "ID": prompt_id(c),
            "Request": c.text,
            "Harmfulness": c.final_label,
            "category": c.category,
            "topic": c.topic,
            "words": ", ".join(str(w) for w in c.words or []),
            "seed": seeds.get(c.round.number, ""),
            "generator": generator,
            "round": c.round.number,
            "target_refusals": target_refusals(refusals.get(c.pk, {})),
            "refusal_share": c.refusal_share,
            "rank": c.rank,
            "judge_label": c.judge_label,
            "judge_rationale": c.judge_rationale,
            "human_label": c.human_label,
            "final_source": c.final_source,
        }
        for c in candidates
    ]


def to_csv(rows: list[dict]) -> str:
    """CSV through the csv module (quotes, commas and line breaks inside cells are safe);
    None as an empty cell."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def to_jsonl(rows: list[dict]) -> str:
    """One JSON object a line, keys in COLUMNS order, UTF-8 text as it is."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
