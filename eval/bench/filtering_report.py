"""The `filters` phase's lines in the report: its targets and its section (pure, untimed).

Targets (issue 21): a filter matching 1% of the chunks costs at most `FILTERED_TO_UNFILTERED`
times the unfiltered search (p50, same layout and run; the mask cached, as a repeated filter is,
and on first use), and, when the phase ran with `--compare-ref`, the unfiltered search of the
current code is not slower than the reference's beyond `UNFILTERED_NOISE` (median of the
interleaved blocks' ratios; a shared machine's noise). Out of scope: measuring
(`eval.bench.filtering`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FILTERED_TO_UNFILTERED = 1.5
UNFILTERED_NOISE = 1.05  # current / reference above this is reported as slower
ONE_PERCENT = ("source 1%", "published 1%")


def filters_targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) of the filters phase, when it ran."""
    filters = results.get("filters", {})
    lines: list[tuple[str, str, str]] = []
    for layout, measured in filters.get("layouts", {}).items():
        searches = measured.get("searches", {})
        for name in ONE_PERCENT:
            cached, first = searches.get(name), searches.get(f"{name}, first use")
            if not cached:
                continue
            worst = max(cached["p50_ratio"], first["p50_ratio"] if first else 0.0)
            lines.append(
                (
                    f"filter {name} of {filters['chunks']:,} chunks ({layout}) <= "
                    f"{FILTERED_TO_UNFILTERED}x unfiltered hybrid search (p50)",
                    f"{cached['p50_ms']:.2f} ms vs {searches['unfiltered']['p50_ms']:.2f} ms = "
                    f"{cached['p50_ratio']:.2f}x"
                    + (f"; first use {first['p50_ratio']:.2f}x" if first else ""),
                    "met" if worst <= FILTERED_TO_UNFILTERED else "NOT met",
                )
            )
    reference = filters.get("reference", {})
    for layout, compared in reference.get("layouts", {}).items():
        block = compared["block_ratio_median"]
        lines.append(
            (
                f"unfiltered hybrid search not slower than before filters (`{reference['ref']}`, {layout})",
                f"current / {reference['ref']}: {block:.2f}x (blocks' median; p50 "
                f"{compared['runs']['current']['p50_ms']:.2f} vs {compared['runs']['reference']['p50_ms']:.2f} ms)",
                "met" if block <= UNFILTERED_NOISE else "NOT met",
            )
        )
    return lines


def filters_markdown(results: dict[str, Any], heading: Callable[[str, str], list[str]]) -> list[str]:
    """The filters phase's section; `heading(key, title)` is the report's phase heading."""
    filters = results.get("filters", {})
    chunks = f"{filters['chunks']:,} chunks" if filters.get("chunks") else "a synthetic index"
    title = f"Filters: hybrid search over {chunks} with and without a filter"
    if filters.get("skipped"):
        return [*heading("filters", title), f"Not measured: {filters['skipped']}"]
    if not filters.get("layouts"):
        return []
    begin, end = filters.get("date_window", ["?", "?"])
    shares = ", ".join(f"{share:.0%}" for share in filters.get("source_shares", {}).values())
    out = [
        *heading("filters", title),
        f"One segment of {filters['chunks']:,} synthetic chunks (`eval.bench.filtering`: real SciFact "
        "sentences, random unit vectors of dimension 384), written twice from the same seed, with an "
        f"exact (flat) and an IVF vector index. Documents carry a `source` ({shares} of them on one "
        f"source each, spread over the segment) and a `published` instant spread evenly over 2025; "
        f"the date filter is `published` in [{begin}, {end}). In-process `Retriever.search` "
        f"(hybrid, k={filters['k']}, question vector given: no encoding), {filters['queries']} "
        f"SciFact questions x {filters['rounds']} round(s), every variant for a question in turn, "
        "the order rotating. *Cached*: the filter was used before (the reader keeps the masks of "
        "its last 32 filters); *first use*: a filter the reader had not seen, matching the same "
        "documents. Ratio: p50 over the unfiltered p50 of the same layout; *paired*: median of "
        "the per-question ratios. The machine was shared: compare ratios, not milliseconds.",
    ]
    for layout, measured in filters["layouts"].items():
        shares_allowed = measured.get("allowed_share", {})
        out += [
            "",
            f"**{layout}** ({', '.join(measured.get('vector_index', []))}):",
            "",
            "| variant | chunks allowed | p50 ms | p95 ms | p99 ms | p50 / unfiltered | paired ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, row in measured["searches"].items():
            share = shares_allowed.get(name.removesuffix(", first use"))
            out.append(
                f"| {name} | {'100%' if share is None else f'{share:.2%}'} | {row['p50_ms']:.2f} | "
                f"{row['p95_ms']:.2f} | {row['p99_ms']:.2f} | {row['p50_ratio']:.2f}x | "
                f"{row['paired_ratio_median']:.2f}x |"
            )
        masks = measured.get("masks", {})
        if masks:
            out += [
                "",
                "The mask alone (`IndexReader.allowed`, fresh reader): "
                + "; ".join(f"{name} {ms:.2f} ms" for name, ms in masks.items())
                + ".",
            ]
    reference = filters.get("reference", {})
    if reference.get("layouts"):
        out += [
            "",
            f"Unfiltered, current code against `{reference['ref']}` ({reference.get('commit', '?')}): "
            "each in a worker process of its own over the same index, the same questions in blocks "
            f"of {reference['block']}, the two sides' blocks back to back, which goes first "
            "alternating; current / reference is the median of the blocks' p50 ratios.",
            "",
            "| layout | current p50 ms | reference p50 ms | current p95 ms | reference p95 ms | "
            "current / reference (blocks) | p50 ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for layout, compared in reference["layouts"].items():
            current, before = compared["runs"]["current"], compared["runs"]["reference"]
            out.append(
                f"| {layout} | {current['p50_ms']:.2f} | {before['p50_ms']:.2f} | {current['p95_ms']:.2f} | "
                f"{before['p95_ms']:.2f} | {compared['block_ratio_median']:.2f}x | {compared['p50_ratio']:.2f}x |"
            )
    return out
