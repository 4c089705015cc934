"""The `pq` phase's section of the segments report: one table of its rows (pure, untimed).

Also `pq_table`, the same table as plain text for the console. Out of scope: measuring
(`eval.bench.compressed`) and verdicts (the phase has no target: it informs docs/scale.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HEADER = (
    "index",
    "re-rank",
    "recall@10",
    "p50 ms",
    "p90 ms",
    "B/vector in memory",
    "code B",
    "float32 read/query",
    "train s (CPU s)",
    "add s (CPU s)",
)


def pq_cells(row: dict[str, Any]) -> list[str]:
    """One row of the phase as table cells (`HEADER`'s order)."""
    depth = row.get("rerank", 0)
    return [
        row["index"],
        f"top {depth}" if depth else "-",
        f"{row['recall_at_10']:.3f}",
        f"{row['p50_ms']:.2f}",
        f"{row['p90_ms']:.2f}",
        f"{row['bytes_per_vector']:,.1f}",
        f"{row['code_bytes']:,}",
        f"{row['float32_read_per_query'] / 1024:.0f} KiB" if row.get("float32_read_per_query") else "-",
        _seconds(row, "train"),
        _seconds(row, "add"),
    ]


def _seconds(row: dict[str, Any], step: str) -> str:
    """Wall seconds of a build step, its CPU seconds in brackets; "-" when not built."""
    if f"{step}_s" not in row:
        return "-"
    cpu = row.get(f"{step}_cpu_s")
    return f"{row[f'{step}_s']:.1f}" + (f" ({cpu:.1f})" if cpu is not None else "")


def pq_table(figures: dict[str, Any]) -> str:
    """The phase's rows as aligned plain text."""
    lines = [list(HEADER), *(pq_cells(row) for row in figures.get("rows", []))]
    widths = [max(len(line[column]) for line in lines) for column in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines
    )


def pq_markdown(results: dict[str, Any], heading: Callable[[str, str], list[str]]) -> list[str]:
    """The phase's section, when it ran; `heading(key, title)` gives its heading and run line."""
    pq = results.get("pq", {})
    if not pq.get("rows"):
        return []
    return [
        *heading(
            "pq", f"Compressed vector indexes at {pq['chunks']:,} chunks: IVF-PQ and IVF-SQ8 against IVFFlat"
        ),
        f"One IVF index over {pq['chunks']:,} vectors of {pq['dimension']} dimensions, {pq['vectors']}; "
        f"{pq['lists']} cells, {pq['probes']} probes, k-means on {pq['training_vectors']:,} of them "
        "(`eval.bench.compressed`). Recall@10 against exact search over all of them, "
        f"{pq['queries']} questions one at a time on one thread; plain rows ask the index for "
        f"{pq['candidates']} candidates (the service's) and keep its top 10; *re-rank top R* asks "
        "for R and re-scores them exactly from the float32 vectors (*float32 read/query*; a service "
        "would read them from its memory-mapped vector file). *B/vector in memory*: the serialized "
        "index / vectors (codes, 8 B ids, centroids); re-ranked rows need the float32 vectors "
        "besides, on disk. The cells' k-means runs once (IVFFlat's *train*); the other kinds start "
        "from its centroids, so their *train* is their codec's alone. One FAISS thread throughout; "
        "flat is timed on fewer questions. Timings come from a shared 2-core machine: noisy, "
        "CPU seconds less so.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *("| " + " | ".join(pq_cells(row)) + " |" for row in pq["rows"]),
    ]
