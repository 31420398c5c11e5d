"""Power planning by simulation: the nominal α under no effect, agreement with statsmodels at
power near 0.5, the simulated data's structure, inputs, output and the command line."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from statsmodels.regression.mixed_linear_model import MixedLM

from studies.analysis.crossed import CrossedModel
from studies.analysis.power import (
    PlannedDesign,
    PowerInputError,
    assumptions_from_dict,
    assumptions_from_report,
    power_settings,
    run_power,
)
from studies.analysis.power.__main__ import main as power_main
from studies.analysis.power.output import power_csv, power_curve, power_text
from studies.analysis.power.simulation import (
    holm,
    parse_participants,
    simulate_ratings,
    simulated_data_sets,
    size_model,
    synthetic_queries,
)
from studies.design import QueryRef
from studies.spec import design_from_spec, load_spec_file
from studies.stimuli_file import read_stimuli_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "refusal-perception"
TYPES = ("direct_refusal", "explanation_based", "redirection", "partial_compliance")


@pytest.fixture(scope="module")
def seed_design() -> PlannedDesign:
    """The seed study's design and queries, read from the example files as the CLI reads them."""
    spec, stimuli = load_spec_file(EXAMPLE / "study.yaml")
    rows = read_stimuli_file(stimuli)
    queries = tuple(QueryRef(r.query_id, r.category) for r in rows)
    return PlannedDesign(design_from_spec(spec), queries, spec.topic_choice, spec.seed)


def _assumptions(**changes) -> object:
    data = {
        "measure": "helpfulness",
        "intercept": 4.0,
        "response_type": {t: 0.0 for t in TYPES},
        "motivation": {"malicious": 0.0},
        "sd_participant": 0.8,
        "sd_query": 0.3,
        "sd_residual": 1.0,
        "points": None,
    }
    data.update(changes)
    return assumptions_from_dict(data)


def _mc_se(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n)


def test_no_true_effect_gives_the_nominal_alpha(seed_design):
    """400 simulated studies with every effect 0: each response-type term is significant in
    5% of them, within three Monte Carlo standard errors (±0.033)."""
    settings = power_settings([96], 400, alpha=0.05, seed=11)
    result = run_power(seed_design, _assumptions(), settings)
    rows = [r for r in result["rows"] if r["response_type"] is not None]
    assert len(rows) == 8  # four main effects and their interactions with motivation
    bound = 3 * _mc_se(0.05, 400)
    for row in rows:
        assert row["true_effect"] == 0.0
        assert abs(row["power"] - 0.05) <= bound, row
        assert row["mc_se"] == pytest.approx(_mc_se(row["power"], 400))
    # Pooled over the eight terms the rate is still 5% (a bias would show here first).
    pooled = sum(r["power"] for r in rows) / len(rows)
    assert abs(pooled - 0.05) <= 3 * _mc_se(0.05, 400 * 8)
    assert result["sizes"][0]["failed"] == 0


def test_holm_adjustment_keeps_each_term_at_or_below_alpha(seed_design):
    settings = power_settings([96], 200, alpha=0.05, seed=11, adjust="holm")
    plain = power_settings([96], 200, alpha=0.05, seed=11)
    adjusted = run_power(seed_design, _assumptions(), settings)["rows"]
    unadjusted = run_power(seed_design, _assumptions(), plain)["rows"]
    for a, u in zip(adjusted, unadjusted, strict=True):
        assert a["power"] <= u["power"]
    assert sum(r["power"] for r in adjusted) < sum(r["power"] for r in unadjusted)


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.2, 0.0001])
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])


@pytest.mark.long_running
def test_power_near_one_half_agrees_with_statsmodels_on_the_same_data(seed_design):
    """An independent estimate on the very same simulated data sets: statsmodels' MixedLM
    with a participant random intercept (queries as fixed effects: its crossed fit takes
    seconds per data set here). Both powers are near 0.5 and agree within Monte Carlo error."""
    a = _assumptions(response_type={"partial_compliance": -0.5})
    settings = power_settings([48], 80, alpha=0.05, seed=3)
    ours = run_power(seed_design, a, settings)
    row = next(r for r in ours["rows"] if r["term"] == "response_type[partial_compliance]")
    assert 0.3 <= row["power"] <= 0.7  # the design point the test is about

    term = "C(response_type, Treatment('full_compliance'))[T.partial_compliance]"
    theirs = []
    for frame, y in simulated_data_sets(seed_design, a, settings, 48):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = MixedLM.from_formula(
                "value ~ C(response_type, Treatment('full_compliance')) * motivation + C(query_id)",
                data=frame.assign(value=y),
                groups="participant",
            ).fit(reml=True)
        theirs.append(fit.pvalues[term] < 0.05)
    their_power = float(np.mean(theirs))
    assert abs(row["power"] - their_power) <= 3 * _mc_se(row["power"], 80), (
        row["power"],
        their_power,
    )


def test_simulated_data_follow_the_real_plan(seed_design):
    """Balanced as the launch plan is: strategies between participants, 8 items each with
    every motivation × alignment cell twice, no query twice, two per category (topic choice)."""
    sm = size_model(seed_design, _assumptions(), 96, np.random.default_rng(0))
    frame = sm.frame
    assert len(frame) == 96 * 8 and sm.n_ratings == 96 * 8
    per_participant = frame.groupby("participant")
    assert set(per_participant.size()) == {8}
    assert (per_participant["query_id"].nunique() == 8).all()
    strategies = per_participant["response_type"].agg(
        lambda s: next(t for t in s if t != "full_compliance")
    )
    assert Counter(strategies) == {t: 24 for t in TYPES}
    for _, rows in per_participant:
        assert Counter(rows["response_type"])["full_compliance"] == 4
        assert Counter(zip(rows["motivation"], rows["alignment"], strict=True)) == {
            ("benign", "aligned"): 2,
            ("benign", "misaligned"): 2,
            ("malicious", "aligned"): 2,
            ("malicious", "misaligned"): 2,
        }
    category = {q.query_id: q.category for q in seed_design.queries}
    assert all(
        set(Counter(category[q] for q in rows["query_id"]).values()) == {2}
        for _, rows in per_participant
    )
    # The analysis's own columns: intercept, 4 types, motivation, 4 interactions (alignment
    # is confounded with type × motivation in this design and dropped, as in the analysis).
    assert sm.terms[:2] == ["Intercept", "response_type[direct_refusal]"]
    assert len(sm.terms) == 10 and not any(t.startswith("alignment") for t in sm.terms)


def test_assumed_effects_and_variances_are_recovered(seed_design):
    a = _assumptions(
        response_type={"direct_refusal": -1.0, "partial_compliance": -0.3},
        motivation={"malicious": -0.2},
        interaction={"redirection": {"malicious": 0.4}},
    )
    result = run_power(seed_design, a, power_settings([480], 40, seed=5))
    size = result["sizes"][0]
    vc = size["mean_variance_components"]
    assert vc["participant"] == pytest.approx(0.64, rel=0.15)
    assert vc["query"] == pytest.approx(0.09, rel=0.5)
    assert vc["residual"] == pytest.approx(1.0, rel=0.05)
    for row in result["rows"]:
        assert row["mean_estimate"] == pytest.approx(row["true_effect"], abs=0.08), row
    by_term = {r["term"]: r for r in result["rows"]}
    assert by_term["response_type[direct_refusal]"]["power"] == 1.0
    assert by_term["response_type[redirection]:motivation[malicious]"]["true_effect"] == 0.4


def test_rounding_to_the_scale_gives_likert_values(seed_design):
    a = _assumptions(points=7, intercept=6.5, sd_residual=1.5)
    sm = size_model(seed_design, a, 16, np.random.default_rng(0))
    _, y = next(simulated_data_sets(seed_design, a, power_settings([16], 10), 16))
    assert set(np.unique(y)) <= set(range(1, 8))
    assert len(y) == sm.n_ratings and y.max() == 7


def test_seeded_results_repeat_and_counts_do_not_depend_on_each_other(seed_design):
    a = _assumptions(response_type={"partial_compliance": -0.4})
    one = run_power(seed_design, a, power_settings([40], 30, seed=9))
    again = run_power(seed_design, a, power_settings([40], 30, seed=9))
    more = run_power(seed_design, a, power_settings([40, 80], 30, seed=9))
    other_seed = run_power(seed_design, a, power_settings([40], 30, seed=10))

    def key(result, n):
        return [
            (r["term"], r["power"], r["mean_estimate"])
            for r in result["rows"]
            if r["participants"] == n
        ]

    assert key(one, 40) == key(again, 40) == key(more, 40)
    assert key(one, 40) != key(other_seed, 40)


def test_progress_is_reported_for_every_fit(seed_design):
    seen = []
    run_power(
        seed_design,
        _assumptions(),
        power_settings([8, 16], 10),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[0] == (1, 20) and seen[-1] == (20, 20) and len(seen) == 20


def test_a_design_without_queries_uses_stand_ins(seed_design):
    planned = PlannedDesign(seed_design.design, synthetic_queries(12), False, 0)
    result = run_power(planned, _assumptions(), power_settings([16], 10))
    assert result["sizes"][0]["queries"] == 12


def test_crossed_gradient_matches_finite_differences():
    """The exact REML gradient the optimiser uses (studies/analysis/crossed.py)."""
    rng = np.random.default_rng(0)
    n = 400
    participant = np.concatenate([np.arange(50), rng.integers(0, 50, n - 50)])
    query = rng.integers(0, 10, n)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, 2))])
    y = X @ [1.0, 0.5, -0.5] + rng.standard_normal(50)[participant] + rng.standard_normal(n)
    y += 0.4 * rng.standard_normal(10)[query]
    crit = CrossedModel(X, {"participant": participant, "query": query})._crit
    crit.set_response(y)
    for theta in (np.array([0.7, 0.3]), np.array([1.5, 0.0]), np.array([0.0, 1.0])):
        _, gradient = crit.deviance_and_gradient(theta)
        # Central differences: the deviance is even in each theta, so this holds at 0 too.
        h = 1e-6
        numeric = [
            (crit.deviance(theta + h * e) - crit.deviance(theta - h * e)) / (2 * h)
            for e in np.eye(2)
        ]
        assert gradient == pytest.approx(numeric, rel=1e-4, abs=1e-3)


def test_fits_reach_the_criterions_minimum_when_a_variance_is_near_zero(seed_design):
    """At theta = 0 the REML criterion's gradient vanishes (it is even in each theta), so a
    gradient method can stop there though the criterion falls off it. On small designs,
    where a variance often lands near 0, every fit (the analysis's and the power loop's)
    is at least as low as the lowest point of a grid over theta."""
    from studies.analysis.crossed import fit_crossed_reml

    a = _assumptions(sd_participant=0.3, sd_query=0.2)
    sm = size_model(seed_design, a, 16, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    crit = sm.model._crit
    grid = [np.array([b, q]) for b in np.linspace(0, 2, 21) for q in np.linspace(0, 1, 11)]
    X = crit.Xt.T  # the design's fixed-effect columns, as the analysis builds them
    factors = {"participant": sm.participant, "query": sm.query}
    hessian = None
    for _ in range(40):
        y = simulate_ratings(sm, a, rng)
        analysis = fit_crossed_reml(y, X, factors)
        power_fit = sm.model.fit(y, np.array([0.3, 0.2]), hessian)
        hessian = sm.model.hessian_at(power_fit.theta)
        crit.set_response(y)
        lowest = min(crit.deviance(theta) for theta in grid)
        assert analysis.reml_deviance <= lowest + 1e-6
        assert power_fit.reml_deviance <= lowest + 1e-6
        assert power_fit.fe_params == pytest.approx(analysis.fe_params, abs=1e-5)


# --- inputs -----------------------------------------------------------------------------------


def test_participant_counts_accept_a_step_and_a_list():
    assert parse_participants("80,160,...,480") == (80, 160, 240, 320, 400, 480)
    assert parse_participants("100, 200,400") == (100, 200, 400)
    with pytest.raises(PowerInputError) as info:
        parse_participants("80,,x")
    assert "participants" in info.value.problems


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"participants": "1"}, "participants"),
        ({"participants": "80,80"}, "participants"),
        ({"participants": "160,80,...,960"}, "participants"),
        ({"simulations": 5}, "simulations"),
        ({"simulations": 10_000, "participants": "80,160,...,2400"}, "simulations"),
        ({"alpha": 0.7}, "alpha"),
        ({"seed": -1}, "seed"),
        ({"adjust": "bonferroni"}, "adjust"),
    ],
)
def test_bad_settings_name_their_field(kwargs, field):
    values = {"participants": "80,160", "simulations": 100, **kwargs}
    with pytest.raises(PowerInputError) as info:
        power_settings(**values)
    assert field in info.value.problems


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sd_residual": 0}, "sd_residual"),
        ({"sd_query": -1}, "sd_query"),
        ({"response_type": {"full_compliance": 1.0}}, "response_type.full_compliance"),
        ({"response_type": {"polite_refusal": 1.0}}, "response_type.polite_refusal"),
        ({"intercept": "high"}, "intercept"),
        ({"points": 1}, "points"),
        ({"colour": "red"}, "colour"),
        ({"measure": ""}, "measure"),
    ],
)
def test_bad_assumptions_name_their_field(changes, field):
    with pytest.raises(PowerInputError) as info:
        _assumptions(**changes)
    assert field in info.value.problems


def test_the_example_assumptions_file_is_valid_and_says_it_is_assumed():
    text = (EXAMPLE / "power.yaml").read_text(encoding="utf-8")
    assert "ASSUMPTIONS" in text and "not estimates from data" in text
    a = assumptions_from_dict(yaml.safe_load(text))
    assert a.measure == "helpfulness" and a.points == 7 and set(a.response_type) == set(TYPES)


def test_a_pilot_reports_model_becomes_the_assumptions():
    report = {
        "meta": {"reference_level": "full_compliance"},
        "mixed_models": [
            {
                "measure": "helpfulness",
                "variance_components": {"participant": 0.49, "query": 0.04, "residual": 1.21},
                "coefficients": [
                    {"term": "Intercept", "estimate": 5.1},
                    {"term": "response_type[direct_refusal]", "estimate": -1.7},
                    {"term": "motivation[malicious]", "estimate": -0.1},
                    {
                        "term": "response_type[direct_refusal]:motivation[malicious]",
                        "estimate": 0.3,
                    },
                ],
            }
        ],
    }
    a = assumptions_from_report(report, "helpfulness", points=7, source="pilot x")
    assert a.intercept == 5.1 and a.response_type == {"direct_refusal": -1.7}
    assert a.motivation == {"malicious": -0.1}
    assert a.interaction == {"direct_refusal": {"malicious": 0.3}}
    assert (a.sd_participant, a.sd_query, a.sd_residual) == pytest.approx((0.7, 0.2, 1.1))
    with pytest.raises(PowerInputError, match="no model of 'frustration'"):
        assumptions_from_report(report, "frustration", points=7, source="pilot x")
    report["mixed_models"][0]["variance_components"]["query"] = None
    with pytest.raises(PowerInputError, match="query"):
        assumptions_from_report(report, "helpfulness", points=7, source="pilot x")


# --- output -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_result(seed_design) -> dict:
    a = _assumptions(response_type={"direct_refusal": -1.0, "partial_compliance": -0.3})
    return run_power(seed_design, a, power_settings([16, 32], 20, seed=1))


def test_power_curve_axes_target_line_and_monte_carlo_bars(small_result):
    fig = power_curve(small_result)
    assert tuple(fig.layout.yaxis.range) == (0, 1)
    lines = [s for s in fig.layout.shapes if s.y0 == 0.8 and s.y1 == 0.8]
    assert lines and lines[0].line.dash == "dash"
    trace = next(t for t in fig.data if t.name == "Partial compliance")
    rows = [r for r in small_result["rows"] if r["term"] == "response_type[partial_compliance]"]
    assert list(trace.x) == [16, 32]
    assert list(trace.error_y.array) == pytest.approx([r["ci_high"] - r["power"] for r in rows])
    assert all(r["ci_low"] <= r["power"] <= r["ci_high"] for r in small_result["rows"])


def test_csv_and_text_carry_every_row(small_result):
    rows = list(csv.DictReader(io.StringIO(power_csv(small_result))))
    assert len(rows) == len(small_result["rows"]) == 16
    assert {"participants", "term", "power", "mc_se", "ci_low", "ci_high"} <= set(rows[0])
    text = power_text(small_result)
    assert "Partial compliance" in text and "Monte Carlo standard error" in text


# --- the command line -------------------------------------------------------------------------


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "studies.analysis.power", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_readme_power_command_runs_as_typed(tmp_path):
    """The README's `python -m studies.analysis.power` line, exactly as written there."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [
        line.strip()
        for line in readme.splitlines()
        if line.strip().startswith("python -m studies.analysis.power ")
    ]
    assert lines, "README.md documents no python -m studies.analysis.power command"
    # Typed in a checkout's root; here a scratch folder that sees the checkout's examples and
    # code, so the command's output file does not land in the working tree.
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for line in lines:
        command = line.split("  #")[0].replace("python", sys.executable, 1)
        out = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, (line, out.stderr)
        assert "Partial compliance" in out.stdout or out.stdout.lstrip().startswith("{")
    assert (tmp_path / "power.csv").exists()


def test_cli_json_output(tmp_path):
    out = _cli(
        "--spec", str(EXAMPLE / "study.yaml"),
        "--assumptions", str(EXAMPLE / "power.yaml"),
        "--participants", "16,32",
        "--simulations", "10",
        "--seed", "2",
        "--json",
        "--html", str(tmp_path / "curve.html"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["settings"]["participants"] == [16, 32] and result["measure"] == "helpfulness"
    assert "Plotly" in (tmp_path / "curve.html").read_text(encoding="utf-8")


def _base_args(**changes: str) -> list[str]:
    base = {
        "--spec": str(EXAMPLE / "study.yaml"),
        "--assumptions": str(EXAMPLE / "power.yaml"),
        "--participants": "16",
        "--simulations": "10",
        **{f"--{k}": v for k, v in changes.items()},
    }
    return [x for pair in base.items() for x in pair]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"participants": "80,x"}, "participants"),
        ({"simulations": "3"}, "simulations"),
        ({"measure": "nonsense"}, "not a question of this study"),
        ({"assumptions": "missing.yaml"}, "cannot read"),
        ({"spec": "missing.yaml"}, "cannot read the file"),
    ],
)
def test_cli_bad_input_returns_2_with_a_message(changes, message, capsys):
    assert power_main(_base_args(**changes)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_cli_bad_input_exits_2_in_a_shell():
    out = _cli(*_base_args(participants="80,x"))
    assert out.returncode == 2
    assert "participants" in out.stderr and "Traceback" not in out.stderr
