"""Wall time and peak memory of build_report on simulated seed-design studies; prints JSON.

Cases (ratings = participants x 8 items x measures; attention-check rows come on top):
  paper   480 participants, 7 measures: 26,880 ratings (the published study's 3,840 rated
          stimuli, each rated on 7 items)
  100k    12,500 participants, 1 measure: 100,000 ratings
  100k-7  12,500 participants, 7 measures: 700,000 ratings (--case 100k-7; slower)
  1m      12,510 participants, the seed study's 10 measures: 1,000,800 ratings (--case 1m)

    .venv/bin/python bench/analysis_speed.py                 # paper and 100k
    .venv/bin/python bench/analysis_speed.py --case 100k-7
    .venv/bin/python bench/analysis_speed.py --case 1m --untraced   # time and peak RSS only
    .venv/bin/python bench/analysis_speed.py --case paper --compare-statsmodels

Each case runs in a fresh child process so that one case's peak RSS does not hide another's.
The wall time is of the first build_report call, untraced. Memory is reported twice: the
child's peak resident set (ru_maxrss) right after that call, which also holds the
interpreter, the libraries and the simulated input frame; and tracemalloc's peak of the
allocations made during a second, traced call (numpy and pandas buffers included).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES: dict[str, tuple[int, int]] = {
    "paper": (480, 7),
    "100k": (12_500, 1),
    "100k-7": (12_500, 7),
    "1m": (12_510, 10),
}
SEVEN = (
    "helpfulness",
    "satisfaction",
    "frustration",
    "transparency",
    "appropriateness",
    "expectation",
    "future_willingness",
    # With the seven above, the seed study's ten questions (the 1m case).
    "perceived_compliance",
    "request_alignment",
    "disturbance",
)


def _effects(n_measures: int) -> dict[str, dict]:
    """n measures with distinct true effects, reusing the simulator's defaults as a base."""
    from tests.analysis.simulate import DEFAULT_EFFECTS

    base = list(DEFAULT_EFFECTS.values())
    out = {}
    for i, name in enumerate(SEVEN[:n_measures]):
        eff = base[i % len(base)]
        scale = 1.0 + 0.1 * i
        out[name] = {
            "intercept": eff["intercept"],
            "response_type": {k: v * scale for k, v in eff["response_type"].items()},
            "motivation": eff["motivation"],
        }
    return out


def run_case(name: str, bootstrap: int, traced: bool = True) -> dict:
    """Simulate, time one untraced build_report, then trace a second for peak allocations."""
    from studies.analysis import ReportOptions, build_report
    from tests.analysis.simulate import simulate_long_format

    n_participants, n_measures = CASES[name]
    start = time.perf_counter()
    df = simulate_long_format(
        n_participants=n_participants, seed=0, effects=_effects(n_measures), rounded=True
    )
    simulate_s = time.perf_counter() - start
    n_ratings = int((df["kind"] == "stimulus").sum())
    options = ReportOptions(bootstrap_reps=bootstrap)

    # Timed without tracemalloc, which slows pandas' Python-level work several-fold.
    start = time.perf_counter()
    report = build_report(df, options)
    wall_s = time.perf_counter() - start
    # Linux reports ru_maxrss in KiB.
    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # A second, traced run for the peak of allocations made inside build_report.
    peak = float("nan")
    if traced:
        tracemalloc.start()
        build_report(df, options)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    json.dumps(report, allow_nan=False)
    return {
        "case": name,
        "participants": n_participants,
        "measures": n_measures,
        "ratings": n_ratings,
        "input_rows": int(len(df)),
        "bootstrap_reps": bootstrap,
        "build_report_wall_s": round(wall_s, 2),
        "tracemalloc_peak_mib": round(peak / 2**20, 1) if traced else None,
        "process_max_rss_mib": round(maxrss_mib, 1),
        "simulate_s": round(simulate_s, 2),
        "methods": sorted({m["method"] for m in report["mixed_models"]}),
        "timings_s": report["meta"]["timings"],
    }


def compare_statsmodels() -> dict:
    """One measure of the paper-sized study fitted both ways: statsmodels vs the report's fit.

    statsmodels' crossed formulation (one group, a variance component per factor, sparse)
    spends its time in score and Hessian terms that solve once per participant column, so
    it grows quadratically with participants; at 12,500 it ran out of memory (23 GiB).
    """
    from statsmodels.regression.mixed_linear_model import MixedLM

    from studies.analysis.mixed import fit_mixed_model
    from tests.analysis.simulate import DEFAULT_EFFECTS, simulate_long_format

    df = simulate_long_format(480, seed=0, effects={"helpfulness": DEFAULT_EFFECTS["helpfulness"]})
    df = df[df["kind"] == "stimulus"].assign(one=1)
    start = time.perf_counter()
    theirs = MixedLM.from_formula(
        "value ~ C(response_type, Treatment('full_compliance')) * motivation",
        data=df,
        groups="one",
        re_formula="0",
        vc_formula={"participant": "0 + C(participant_id)", "query": "0 + C(query_id)"},
        use_sparse=True,
    ).fit(reml=True)
    statsmodels_s = time.perf_counter() - start
    start = time.perf_counter()
    ours = fit_mixed_model(df, "full_compliance", ["response_type", "motivation"])
    ours_s = time.perf_counter() - start
    diff = max(
        abs(a - b)
        for a, b in zip(
            theirs.fe_params.to_numpy()[[0, 1, 2, 4, 3, 5]],
            [c["estimate"] for c in ours["coefficients"][:6]],
            strict=True,
        )
    )
    return {
        "case": "statsmodels-vs-report-fit",
        "ratings": int(len(df)),
        "statsmodels_crossed_fit_s": round(statsmodels_s, 2),
        "report_crossed_fit_s": round(ours_s, 3),
        "max_abs_difference_in_estimates": float(f"{diff:.2g}"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), action="append")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument(
        "--compare-statsmodels",
        action="store_true",
        help="also time statsmodels' crossed MixedLM on one paper-sized measure (~20 s)",
    )
    parser.add_argument(
        "--untraced",
        action="store_true",
        help="skip the second, traced run (tracemalloc makes it several times slower)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cases = args.case or ["paper", "100k"]
    if args.child:
        print(json.dumps(run_case(cases[0], args.bootstrap, traced=not args.untraced)))
        return
    results = []
    for case in cases:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--case",
                case,
                "--bootstrap",
                str(args.bootstrap),
                *(["--untraced"] if args.untraced else []),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if args.compare_statsmodels:
        results.append(compare_statsmodels())
    print(json.dumps({"python": sys.version.split()[0], "results": results}, indent=2))


if __name__ == "__main__":
    main()
