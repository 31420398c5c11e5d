"""format_report: the analysis report as plain text for a terminal or an e-mail."""

from __future__ import annotations

from collections.abc import Sequence

from studies.analysis import claims


def _f(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.0f}%"


def _p(p: float | None) -> str:
    if p is None:
        return "–"
    return "<.001" if p < 0.001 else f"{p:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Left-aligned first column, right-aligned numbers, widths from the content."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        rest = [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return indent + "  ".join([first, *rest]).rstrip()

    return [line(header), indent + "-" * (sum(widths) + 2 * (len(widths) - 1)), *map(line, rows)]


def _signed(x: float) -> str:
    return f"{x * 100:.0f}%"


def headline(row: dict, n_participants: int | None = None) -> str:
    """One gap-reduction line, worded as far as the intervals support it (claims.gap_status):

    'partial_compliance reduces the helpfulness gap by 61% [95% CI 48%, 72%]', or why no share
    is given ('not enough data yet (3 participants; 30 needed)', 'no clear gap', 'too
    uncertain'). ``n_participants`` is used when the row does not carry its own count.
    """
    measure, kind = row["measure"], row["response_type"]
    status = claims.gap_status(row, n_participants)
    if status == claims.TOO_FEW:
        n = claims.number(row.get("n_participants"))
        n = int(n if n is not None else (n_participants or 0))
        return (
            f"{kind}, {measure}: not enough data yet ({n} participants; "
            f"{claims.MIN_PARTICIPANTS} needed)"
        )
    if status == claims.NOT_ESTIMABLE:
        return f"{kind}: no gap reduction for {measure} (see warnings)"
    if status == claims.NO_CLEAR_GAP:
        gap, low, high = (claims.number(row.get(k)) for k in ("gap", "gap_ci_low", "gap_ci_high"))
        detail = f" ({_f(gap)} [95% CI {_f(low)}, {_f(high)}])" if None not in (low, high) else ""
        return (
            f"{kind}, {measure}: no share reported: the gap to reduce is not clearly "
            f"non-zero{detail}"
        )
    if status == claims.TOO_UNCERTAIN:
        return f"{kind}, {measure}: no share reported: too uncertain yet (95% CI too wide)"
    ci = f" [95% CI {_signed(row['ci_low'])}, {_signed(row['ci_high'])}]"
    if not claims.excludes_zero(row["ci_low"], row["ci_high"]):
        return (
            f"{kind} is not clearly different from the baseline on {measure}: "
            f"{_signed(row['reduction'])} of the gap{ci}"
        )
    verb = "reduces" if row["reduction"] >= 0 else "widens"
    return f"{kind} {verb} the {measure} gap by {_pct(abs(row['reduction']))}{ci}"


def format_report(report: dict) -> str:
    """Headline gap reductions, means, model coefficients, variance explained and reliability."""
    meta = report["meta"]
    ref, base = meta["reference_level"], meta["baseline_level"]
    out: list[str] = [
        "RefusalLab analysis report",
        f"{meta['n_ratings']} ratings from {meta['n_participants']} participants on "
        f"{meta['n_queries']} queries; {meta['inclusion']}",
        f"measures: {', '.join(meta['measures']) or '(none)'}; factors: "
        f"{', '.join(meta['factors'])}",
        f"effects relative to {ref}; gap reduction against {base}",
        f"inputs sha256 {meta['inputs_hash'][:16]}…, code version {meta['code_version']}",
    ]
    if meta["warnings"]:
        out += ["", f"WARNINGS ({len(meta['warnings'])})"]
        out += [f"  ! {w}" for w in meta["warnings"]]
    failed = meta.get("failed_parts") or []
    if failed:
        out += ["", "NOT COMPUTED (an internal error, logged for the operators)"]
        out += [f"  - {name}" for name in failed]

    n = int(meta["n_participants"] or 0)
    out += ["", f"Gap reduction (the gap from {base} to {ref}, closed by each response type)"]
    out.append(
        f"  shares are given from {claims.MIN_PARTICIPANTS} participants on, where the gap's "
        "95% CI excludes 0 and the share's CI lies within -100%..200%"
    )
    if n < claims.MIN_PARTICIPANTS:
        out.append(
            f"  not enough data yet: {n} participants ({claims.participants_needed(n)} more needed)"
        )
    else:
        out += [f"  {headline(r, n)}" for r in report["gap_reduction"]] or ["  (none)"]

    by_type = [r for r in report["descriptives"] if r["grouping"] == "response_type"]
    if by_type:
        out += ["", "Means by response type (95% CI)"]
        out += _table(
            ["measure", "response type", "n", "mean", "sd", "95% CI"],
            [
                [
                    r["measure"],
                    r["response_type"],
                    str(r["n"]),
                    _f(r["mean"]),
                    _f(r["sd"]),
                    f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}]",
                ]
                for r in by_type
            ],
        )

    for model in report["mixed_models"]:
        out += ["", f"Model: {model['measure']}"]
        out.append(f"  {model['formula'] or '(no model)'}")
        out.append(
            f"  {model['method']}; converged: {'yes' if model['converged'] else 'no'}; "
            f"{model['n_obs']} ratings, {model['n_participants']} participants, "
            f"{model['n_queries']} queries"
        )
        vc = model["variance_components"]
        out.append(
            f"  variances: participant {_f(vc['participant'], 3)}, query {_f(vc['query'], 3)}, "
            f"residual {_f(vc['residual'], 3)}"
        )
        if model["warning"]:
            out.append(f"  note: {model['warning']}")
        if model["coefficients"]:
            out += _table(
                ["term", "estimate", "SE", "95% CI", "p", "p (Holm)", ""],
                [
                    [
                        c["term"],
                        _f(c["estimate"], 3),
                        _f(c["se"], 3),
                        f"[{_f(c['ci_low'], 3)}, {_f(c['ci_high'], 3)}]",
                        _p(c["p"]),
                        _p(c["p_holm"]),
                        c["stars"],
                    ]
                    for c in model["coefficients"]
                ],
            )
    out.append(
        "  Holm's adjustment over each measure's response-type terms; * <.05 ** <.01 *** <.001"
    )

    if report["variance_explained"]:
        out += ["", "Variance explained (eta squared)"]
        factors = list(dict.fromkeys(r["factor"] for r in report["variance_explained"]))
        measures = list(dict.fromkeys(r["measure"] for r in report["variance_explained"]))
        eta = {(r["measure"], r["factor"]): r["eta_squared"] for r in report["variance_explained"]}
        out += _table(
            ["measure", *factors],
            [[m, *(_f(eta.get((m, f)), 3) for f in factors)] for m in measures],
        )

    rel = report["reliability"]
    out += ["", "Reliability"]
    for r in rel["cronbach_alpha"]:
        out.append(
            f"  Cronbach's alpha, {r['construct']} ({', '.join(r['items'])}): "
            f"{_f(r['alpha'])} over {r['n']} rated stimuli"
        )
    for r in rel["krippendorff_alpha"]:
        out.append(
            f"  Krippendorff's alpha ({r['level']}), {r['measure']}: {_f(r['alpha'])} "
            f"over {r['n_units']} query × response-type units"
        )
    for r in rel["attention_checks"]:
        out.append(f"  attention check {r['check']}: {_pct(r['pass_rate'])} passed (n={r['n']})")
    if not any(rel.values()):
        out.append("  (nothing to report)")

    timings = ", ".join(f"{k[:-2]} {v:.2f}s" for k, v in meta["timings"].items())
    out += ["", f"timings: {timings}"]
    return "\n".join(out) + "\n"
