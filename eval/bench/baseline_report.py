"""The baseline phase's verdicts and report section: current against baseline, pure and untimed.

In scope: the comparison rows (current/baseline ratios, each side against the model floor), which
of them count as a regression beyond the threshold, the line the phase adds to the report's
targets and its markdown section. A regression is c=1 p50 more than `THRESHOLD` above the
baseline's, or c=32 throughput more than `THRESHOLD` below it; p95 and p99 are shown with their
ratios but not flagged (too few requests sit in a tail for a 10% change there to mean anything).
With no usable baseline the same two figures are held against the project's targets over the
model floor instead (c=1 p50 <= 1.3x one question encoded alone, c=32 >= 0.9x the encoder's rate
in batches of 8), the targets `make bench` states (`eval.bench.targets`).

Left out: measuring (`eval.bench.baseline`) and any exit status: a regression is reported, in
bold, never raised.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any, NamedTuple

from eval.bench.figures import ratio
from eval.bench.targets import C1_P50_TO_SINGLE, C32_TO_BATCHED

THRESHOLD = 0.10  # more than 10% slower p50 or lower throughput than the baseline: a regression


class Figure(NamedTuple):
    key: str
    label: str
    run: str  # "c1" or "c32": which pooled run of a side it is read from
    field: str
    higher_is_better: bool
    flagged: bool  # a change beyond THRESHOLD is a regression (else the ratio is only reported)
    floor: str | None  # the floor figure it is held against, if any
    floor_target: float | None  # current/floor limit when there is no baseline


FIGURES = (
    Figure("c1_p50", "c=1 p50 ms", "c1", "p50_ms", False, True, "single_ms_p50", C1_P50_TO_SINGLE),
    Figure("c1_p95", "c=1 p95 ms", "c1", "p95_ms", False, False, None, None),
    Figure("c32_per_s", "c=32 queries/s", "c32", "per_s", True, True, "batch8_per_s", C32_TO_BATCHED),
    Figure("c32_p99", "c=32 p99 ms", "c32", "p99_ms", False, False, None, None),
)


def by_round(sides: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each figure of each round, the sides side by side: `sides` maps a side to its rounds,
    each {"c1": run, "c32": run}."""
    names = list(sides)
    count = min(len(rounds) for rounds in sides.values())
    table: dict[str, Any] = {"sides": names}
    for figure in FIGURES:
        table[figure.key] = [
            [sides[name][number][figure.run][figure.field] for name in names] for number in range(count)
        ]
    return table


def comparison(
    current: dict[str, Any],
    baseline: dict[str, Any] | None,
    floor: dict[str, Any],
    rounds: dict[str, Any] | None = None,
    threshold: float = THRESHOLD,
) -> list[dict[str, Any]]:
    """One row per figure: both sides, current/baseline, each side against the floor, and
    `flagged` with its reason when the figure regressed (or, with no baseline, misses its target
    over the floor). `current` and `baseline` are a side's pooled runs, {"c1": ..., "c32": ...};
    `rounds` (`by_round`, current then baseline) makes the ratio the median of the rounds' own
    ratios: each round's two runs ran back to back, so a burst of load from elsewhere that hits
    one round moves one ratio, where it would move the pooled figures of one side."""
    rows = []
    for figure in FIGURES:
        now = current[figure.run][figure.field]
        before = baseline[figure.run][figure.field] if baseline else None
        row: dict[str, Any] = {
            "figure": figure.key,
            "label": figure.label,
            "current": now,
            "baseline": before,
            "ratio": ratio(now, before),
            "flagged": False,
        }
        paired = [ratio(*pair) for pair in (rounds or {}).get(figure.key, []) if len(pair) == 2]
        if baseline is not None and paired and None not in paired:
            row.update(
                pooled_ratio=row["ratio"],
                round_ratios=paired,
                ratio=round(statistics.median(value for value in paired if value is not None), 3),
            )
        floor_value = floor.get(figure.floor) if figure.floor else None
        if floor_value:
            row.update(
                floor=round(floor_value, 2),
                current_to_floor=ratio(now, floor_value),
                baseline_to_floor=ratio(before, floor_value),
            )
        if figure.flagged and row["ratio"] is not None:
            worse = row["ratio"] < 1 - threshold if figure.higher_is_better else row["ratio"] > 1 + threshold
            if worse:
                change = "lower" if figure.higher_is_better else "higher"
                row["flagged"] = True
                row["reason"] = f"more than {threshold:.0%} {change} than the baseline's"
        elif baseline is None and figure.floor_target is not None and row.get("current_to_floor"):
            against = row["current_to_floor"]
            missed = (
                against < figure.floor_target if figure.higher_is_better else against > figure.floor_target
            )
            if missed:
                sign = ">=" if figure.higher_is_better else "<="
                row["flagged"] = True
                row["reason"] = f"the floor target is {sign} {figure.floor_target}x"
        rows.append(row)
    return rows


def regressions(rows: list[dict[str, Any]]) -> list[str]:
    """`label ratio: reason` of each flagged row (the ratio to the baseline, or to the floor
    when there is no baseline)."""
    return [
        f"{row['label']} {_times(row['ratio'] if row['baseline'] is not None else row.get('current_to_floor'))}: "
        f"{row['reason']}"
        for row in rows
        if row["flagged"]
    ]


def baseline_targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The line the baseline phase adds to the report's targets table, if it ran."""
    guard = results.get("baseline", {})
    rows = guard.get("comparison")
    if not rows:
        return []
    flagged = {row["figure"]: row for row in rows if row["figure"] in ("c1_p50", "c32_per_s")}
    if guard.get("baseline_commit"):
        measured = ", ".join(f"{row['label']} {_times(row['ratio'])}" for row in flagged.values())
        target = (
            f"no regression beyond {guard.get('threshold', THRESHOLD):.0%} against the baseline "
            f"`{guard['baseline_ref']}` ({guard['baseline_commit']}), bundled corpus"
        )
    else:
        measured = ", ".join(
            f"{row['label']} {_times(row.get('current_to_floor'))} the floor" for row in flagged.values()
        )
        target = "baseline phase without a baseline: the floor targets, bundled corpus"
    met = not any(row["flagged"] for row in rows)
    return [(target, measured, "met" if met else "**NOT met**")]


def baseline_markdown(results: dict[str, Any], heading: Callable[[str, str], list[str]]) -> list[str]:
    """The baseline phase's section; `heading(key, title)` is the report's phase heading."""
    guard = results.get("baseline", {})
    title = "Current code against a baseline: HTTP on the bundled corpus"
    if guard.get("error"):
        return [*heading("baseline", title), f"**The phase failed**: {guard['error']}"]
    if not guard.get("comparison"):
        return []
    has_baseline = bool(guard.get("baseline_commit"))
    current, requests = guard.get("current", {}), guard.get("requests", {})
    modified = f"; modified: {', '.join(current['modified'])}" if current.get("modified") else ""
    out = [
        *heading("baseline", title),
        f"Current: the working tree at {current.get('commit', '?')}{modified}. Baseline: "
        + (
            f"`{guard['baseline_ref']}` ({guard['baseline_commit']}; {guard.get('chosen', '')})."
            if has_baseline
            else f"**none** ({guard.get('unusable') or guard.get('chosen', '')}): the current code "
            "is held against the model floor only."
        ),
        "",
        f"Each side builds its own index of the bundled corpus with its own code ({_chunks(guard)}) "
        "and serves it with `rag serve` (default settings, the same virtualenv). Both servers run "
        f"side by side through {guard.get('rounds')} round(s); each round, the model floor, then "
        f"{requests.get('c1')} requests from each side at concurrency 1, then {requests.get('c32')} "
        f"at 32, `GET /search?q=...&k=5&mode={guard.get('mode')}` with the seed questions rotating "
        "(the same ones for both sides in a round). The two sides' runs at a concurrency follow "
        "each other, which goes first alternating, so drift on a shared machine hits both. "
        "Figures are over every request of every round; current/baseline is the median of the "
        "rounds' own ratios (a burst of load from elsewhere moves one round's). The floor is the "
        "model alone in a process of its own with the servers' thread settings (medians of the "
        "rounds). "
        f"**Bold**: a regression (c=1 p50 more than {guard.get('threshold', THRESHOLD):.0%} above "
        "the baseline's, c=32 queries/s more than that below it"
        + ("" if has_baseline else "; without a baseline: a floor target missed")
        + ").",
        "",
        "| figure | current | baseline | current/baseline | floor | current/floor | baseline/floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in guard["comparison"]:
        against_baseline, against_floor = _times(row["ratio"]), _times(row.get("current_to_floor"))
        if row["flagged"] and has_baseline:
            against_baseline = f"**{against_baseline}: {row['reason']}**"
        elif row["flagged"]:
            against_floor = f"**{against_floor}: {row['reason']}**"
        label, now = row["label"], _number(row["current"])
        if row["flagged"]:
            label, now = f"**{label}**", f"**{now}**"
        out.append(
            f"| {label} | {now} | {_number(row['baseline'])} | {against_baseline} | "
            f"{_number(row.get('floor'))} | {against_floor} | {_times(row.get('baseline_to_floor'))} |"
        )
    found = regressions(guard["comparison"])
    flag, none = ("Regression", "No regression flagged.") if has_baseline else ("Floor target missed", "")
    out += ["", f"**{flag}: " + "; ".join(found) + ".**" if found else none or "Every floor target met."]
    out += _details(guard)
    return out


def _details(guard: dict[str, Any]) -> list[str]:
    floor = guard.get("floor", {})
    lines = []
    if floor:
        lines.append(
            f"Floor, questions encoded as the current code serves them ({floor.get('runtime', 'torch')}): "
            f"one question {floor.get('single_ms_p50', 0):.1f} ms p50, "
            f"{floor.get('single_per_s', 0):.0f}/s one at a time, {floor.get('batch8_per_s', 0):.0f}/s "
            "in batches of 8. The model's own `SentenceTransformer.encode` (PyTorch): one question "
            f"{floor.get('torch_single_ms_p50', 0):.1f} ms p50, "
            f"{floor.get('torch_batch8_per_s', 0):.0f}/s in batches of 8."
        )
    rounds = guard.get("by_round", {})
    for row in guard.get("comparison", []):
        if row["figure"] in ("c1_p50", "c32_per_s") and rounds.get(row["figure"]):
            pairs = ", ".join(" / ".join(_number(value) for value in pair) for pair in rounds[row["figure"]])
            ratios = (
                f" (ratios {', '.join(f'{r:.2f}' for r in row['round_ratios'])})"
                if row.get("round_ratios")
                else ""
            )
            lines.append(f"{row['label']} by round ({' / '.join(rounds['sides'])}): {pairs}{ratios}.")
    for side, server in guard.get("servers", {}).items():
        errors = server.get("errors", 0)
        lines.append(
            f"{side}: start-up {server.get('startup_s', 0):.1f} s, peak memory "
            f"{server.get('peak_memory_mb') or 0:.0f} MB, "
            + (f"**{errors} requests failed: its figures are not comparable**" if errors else "no errors")
            + "."
        )
    return ["", *(f"- {line}" for line in lines)] if lines else []


def _chunks(guard: dict[str, Any]) -> str:
    indexes = guard.get("indexes", {})
    return ", ".join(f"{side} {index.get('chunks')} chunks" for side, index in indexes.items()) or "?"


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"
