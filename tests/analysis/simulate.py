"""Ratings in long format simulated on the seed study's own plan, with known true effects."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from studies.design import QueryRef, build_plan
from studies.spec import design_from_spec, load_spec_file

STRATEGIES = ("direct_refusal", "explanation_based", "redirection", "partial_compliance")
CATEGORIES = ("offensive_language", "dangerous_topics", "privacy_violation", "false_information")

# The seed design, read from the example spec the platform ships
# (examples/refusal-perception/study.yaml); plans are built without topic choice.
SEED_DESIGN = design_from_spec(
    load_spec_file(Path(__file__).resolve().parents[2] / "examples/refusal-perception/study.yaml")[
        0
    ]
)
QUERIES = tuple(QueryRef(f"q{i:02d}", CATEGORIES[(i - 1) // 4]) for i in range(1, 17))

# True effects per measure: intercept (full compliance, benign), response-type effects
# relative to full compliance, and the effect of a malicious motivation. Partial compliance
# sits at 0.4 of direct refusal's gap for helpfulness, so its true gap reduction is 0.6.
DEFAULT_EFFECTS: dict[str, dict] = {
    "helpfulness": {
        "intercept": 5.0,
        "response_type": {
            "direct_refusal": -2.0,
            "explanation_based": -1.6,
            "redirection": -1.2,
            "partial_compliance": -0.8,
        },
        "motivation": {"malicious": -0.2},
    },
    "satisfaction": {
        "intercept": 4.8,
        "response_type": {
            "direct_refusal": -1.5,
            "explanation_based": -1.2,
            "redirection": -1.0,
            "partial_compliance": -0.5,
        },
        "motivation": {"malicious": 0.0},
    },
    "frustration": {
        "intercept": 2.8,
        "response_type": {
            "direct_refusal": 1.6,
            "explanation_based": 1.2,
            "redirection": 0.9,
            "partial_compliance": 0.6,
        },
        "motivation": {"malicious": 0.1},
    },
    "transparency": {
        "intercept": 4.5,
        "response_type": {
            "direct_refusal": -0.5,
            "explanation_based": 0.5,
            "redirection": 0.2,
            "partial_compliance": -1.0,
        },
        "motivation": {"malicious": 0.0},
    },
}


def seed_plan_frame(n_participants: int, seed: int) -> pd.DataFrame:
    """One row per planned page of the seed design (stimuli and attention checks)."""
    slots = build_plan(SEED_DESIGN, QUERIES, n_participants, seed=seed, topic_choice=False)
    records = [
        {
            "participant_id": f"p{slot.index:05d}",
            "refusal_strategy": slot.cell["refusal_strategy"],
            "item_position": item.position,
            "kind": item.kind,
            "query_id": item.query_id,
            "category": item.category or None,
            "motivation": item.motivation or None,
            "alignment": item.levels.get("alignment"),
            "response_type": item.response_type or None,
            "attention_check": item.attention_check,
        }
        for slot in slots
        for item in slot.items
    ]
    return pd.DataFrame.from_records(records)


def simulate_long_format(
    n_participants: int = 480,
    seed: int = 0,
    effects: Mapping[str, Mapping] | None = None,
    sd_participant: float = 0.8,
    sd_query: float = 0.3,
    sd_residual: float = 1.0,
    rounded: bool = False,
    attention_pass: float = 0.95,
) -> pd.DataFrame:
    """Long-format ratings of the seed design: value = intercept + effects + random parts + noise.

    Each measure gets its own participant and query intercepts and noise (same SDs). With
    ``rounded`` the values are rounded and clipped to the 1..7 scale, as people answer.
    Attention checks (correct answer 3) are passed with probability ``attention_pass``.
    """
    effects = DEFAULT_EFFECTS if effects is None else effects
    rng = np.random.default_rng(seed)
    plan = seed_plan_frame(n_participants, seed)
    stim = plan[plan["kind"] == "stimulus"].reset_index(drop=True)
    att = plan[plan["kind"] == "attention"].reset_index(drop=True)
    p_codes, participants = pd.factorize(stim["participant_id"])
    q_codes, queries = pd.factorize(stim["query_id"])
    malicious = (stim["motivation"] == "malicious").to_numpy()
    frames = []
    for measure, eff in effects.items():
        type_effect = stim["response_type"].map(lambda t, eff=eff: eff["response_type"].get(t, 0.0))
        value = (
            eff["intercept"]
            + type_effect.to_numpy(dtype=float)
            + malicious * eff.get("motivation", {}).get("malicious", 0.0)
            + rng.normal(0, sd_participant, len(participants))[p_codes]
            + rng.normal(0, sd_query, len(queries))[q_codes]
            + rng.normal(0, sd_residual, len(stim))
        )
        if rounded:
            value = np.clip(np.round(value), 1, 7)
        frames.append(stim.assign(question=measure, value=value, correct=np.nan))
    passed = rng.random(len(att)) < attention_pass
    wrong = rng.choice([1, 2, 4, 5, 6, 7], size=len(att))
    frames.append(
        att.assign(
            question=att["attention_check"],
            value=np.where(passed, 3, wrong).astype(float),
            correct=3.0,
        )
    )
    df = pd.concat(frames, ignore_index=True).drop(columns=["attention_check"])
    df["topic"] = None
    df["participant_status"] = "completed"
    df["ms_on_page"] = rng.integers(3_000, 60_000, len(df))
    columns = [
        "participant_id",
        "query_id",
        "category",
        "motivation",
        "response_type",
        "question",
        "value",
        "alignment",
        "refusal_strategy",
        "topic",
        "item_position",
        "ms_on_page",
        "participant_status",
        "kind",
        "correct",
    ]
    return df[columns]


# The seed study's ten questions, in its spec's order.
SEED_MEASURES = (
    "perceived_compliance",
    "request_alignment",
    "expectation",
    "appropriateness",
    "helpfulness",
    "transparency",
    "satisfaction",
    "frustration",
    "disturbance",
    "future_willingness",
)


def random_answers(
    n_participants: int, seed: int = 0, measures: tuple[str, ...] = SEED_MEASURES, points: int = 7
) -> pd.DataFrame:
    """Long format of the seed design where every answer is drawn uniformly from 1..points:
    no effect of anything, so no headline may claim one."""
    effects = {m: {"intercept": 4.0, "response_type": {}} for m in measures}
    df = simulate_long_format(n_participants, seed=seed, effects=effects)
    rng = np.random.default_rng(seed + 1)
    stimulus = (df["kind"] == "stimulus").to_numpy()
    df.loc[stimulus, "value"] = rng.integers(1, points + 1, int(stimulus.sum())).astype(float)
    return df
