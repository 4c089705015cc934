"""Writing the benchmark's results: JSON (everything), a markdown table and a PNG plot.

Every file is written to a temporary name, fsynced and renamed into place, so a crashed run
never leaves a half-written report. The markdown leads with the performance targets, each with
the measured figure and whether it was met.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def write_reports(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(results, indent=1, sort_keys=False).encode()
    _atomic_write(out / "bench.json", lambda handle: handle.write(payload))
    markdown = render_markdown(results).encode()
    _atomic_write(out / "bench.md", lambda handle: handle.write(markdown))
    rows = results.get("scaling", {}).get("rows", [])
    if rows:
        _atomic_write(out / "bench.png", lambda handle: _plot(rows, handle))


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; reports are for everyone
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _run(results: dict[str, Any], mode: str, concurrency: int) -> dict[str, Any] | None:
    for run in results.get("http", {}).get("runs", []):
        if run["mode"] == mode and run["concurrency"] == concurrency:
            return dict(run)
    return None


def _row(
    rows: list[dict[str, Any]], index: str, chunks: int, data: str | None = None
) -> dict[str, Any] | None:
    return next(
        (r for r in rows if r["index"] == index and r["chunks"] == chunks and data in (None, r["data"])), None
    )


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for each target that this run measured."""
    lines: list[tuple[str, str, str]] = []
    # The question floor measured right before the HTTP phase, when there is one: same conditions.
    floor = results.get("floor", {}).get("questions_before_http") or results.get("floor", {}).get(
        "questions", {}
    )
    single_ms, single_rate = floor.get("single_ms_p50"), floor.get("single_per_s")
    one, busy = _run(results, "hybrid", 1), _run(results, "hybrid", 32)
    if one and single_ms:
        ratio = one["p50_ms"] / single_ms
        lines.append(
            (
                "c=1 p50 over HTTP <= 1.3x bare question encoding",
                f"{one['p50_ms']:.1f} ms vs {single_ms:.1f} ms = {ratio:.2f}x",
                _verdict(ratio <= 1.3),
            )
        )
        if service_ms := floor.get("service_single_ms_p50"):
            lines.append(
                (
                    "(for reference) c=1 p50 over HTTP against the service's own encoder alone",
                    f"{one['p50_ms']:.1f} ms vs {service_ms:.1f} ms = {one['p50_ms'] / service_ms:.2f}x",
                    "reported",
                )
            )
    if busy and single_rate:
        ratio = busy["per_s"] / single_rate
        lines.append(
            (
                "c=32 throughput >= 1.5x one-at-a-time encoding",
                f"{busy['per_s']:.0f}/s vs {single_rate:.0f}/s = {ratio:.2f}x "
                f"(load generator: {busy['client_cores']:.2f} cores)",
                _verdict(ratio >= 1.5),
            )
        )
        lines.append(("c=32 p99 < 150 ms", f"{busy['p99_ms']:.0f} ms", _verdict(busy["p99_ms"] < 150)))
    for name, build in results.get("build", {}).items():
        if build.get("ratio_to_floor") is not None:
            lines.append(
                (
                    f"build throughput >= 0.9x bare passage encoding ({_build_label(name, build)})",
                    f"{build['chunks_per_s']:.1f} vs {build['floor']['per_s']:.1f} chunks/s = "
                    f"{build['ratio_to_floor']:.2f}x",
                    _verdict(build["ratio_to_floor"] >= 0.9),
                )
            )
    rows = results.get("scaling", {}).get("rows", [])
    largest = max((r["chunks"] for r in rows), default=0)
    approximate = _row(rows, "ivf", largest, "real+noise")
    worst = _row(rows, "ivf", largest, "gaussian")
    if approximate:
        lines.append(
            (
                f"approximate index at {largest:,} chunks: recall@10 >= 0.95",
                f"IVF {approximate['recall_at_10']:.3f} ({approximate['parameters']})"
                + (f"; plain Gaussian worst case {worst['recall_at_10']:.3f}" if worst else ""),
                _verdict(approximate["recall_at_10"] >= 0.95),
            )
        )
        lines.append(
            (
                f"approximate index at {largest:,} chunks: p50 search < 5 ms",
                f"{approximate['p50_ms']:.2f} ms ({approximate['bytes_per_chunk']:.0f} B/chunk)",
                _verdict(approximate["p50_ms"] < 5),
            )
        )
    bm25 = _row(rows, "bm25", largest)
    if bm25:
        lines.append((f"BM25 fast at {largest:,} chunks", f"p50 {bm25['p50_ms']:.1f} ms", "reported"))
    onnx = results.get("onnx")
    if onnx and onnx.get("ndcg_deltas"):
        # "Within 0.005 of the default" guards against a loss: a gain does not disqualify it.
        deltas = list(onnx["ndcg_deltas"].values())
        lines.append(
            (
                "ONNX int8 backend loses at most 0.005 nDCG@10 against the default",
                f"deltas {min(deltas):+.4f} to {max(deltas):+.4f}, {onnx['speedup']:.2f}x faster passages",
                _verdict(min(deltas) >= -0.005),
            )
        )
    return lines


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def _build_label(name: str, build: dict[str, Any]) -> str:
    """`scifact, standalone sentence vectors`; reports from before both modes were built say
    only the corpus."""
    mode = build.get("sentence_vectors")
    return f"{build.get('corpus', name)}, {mode} sentence vectors" if mode else name


def render_markdown(results: dict[str, Any]) -> str:
    quick = " (QUICK smoke run)" if results.get("quick") else ""
    out = [
        f"# Benchmark{quick}",
        "",
        *(
            [
                "> **QUICK smoke run** (`python -m eval.bench --quick`): every phase shrunk to check "
                "that it works (a small SciFact subset, growth to 100k chunks, short HTTP "
                "runs). None of the figures below is worth quoting; `make bench` measures them.",
                "",
            ]
            if quick
            else []
        ),
        f"Run {results.get('started', '?')} on {results.get('cpus', '?')} CPUs"
        + (f", {results['wall_s'] / 60:.1f} min in all" if results.get("wall_s") else "")
        + ". Produced by `make bench`; floor and service figures are measured in the same run.",
        *(
            [
                "",
                "Phases ended at (min from the start): "
                + ", ".join(
                    f"{phase} {seconds / 60:.1f}" for phase, seconds in results["phase_end_s"].items()
                )
                + ".",
            ]
            if results.get("phase_end_s")
            else []
        ),
        *(
            [
                "",
                f"The floor and HTTP figures were measured again, together, at {results['http_rerun']} "
                "(`python -m eval.bench --rerun-http`, over this run's SciFact index).",
            ]
            if results.get("http_rerun")
            else []
        ),
        *(
            [
                "",
                f"The ONNX comparison was run again at {results['onnx_rerun']} "
                "(`python -m eval.bench --rerun-onnx`).",
            ]
            if results.get("onnx_rerun")
            else []
        ),
        *(["", results["notes"]] if results.get("notes") else []),
        "",
        f"## Targets{quick}",
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]
    out += [f"| {target} | {measured} | {verdict} |" for target, measured, verdict in targets(results)]
    floor = results.get("floor", {})
    questions, passages = (
        floor.get("questions_before_http") or floor.get("questions", {}),
        floor.get("passages", {}),
    )
    if questions:
        out += [
            "",
            f"## Floor: the model alone{quick}",
            "",
            "| | |",
            "|---|---|",
            f"| one question (`SentenceTransformer.encode`) | {questions['single_ms_p50']:.1f} ms p50, "
            f"{questions['single_per_s']:.0f}/s |",
            *(
                [f"| one question (the service's `embed_batch`) | {service:.1f} ms p50 |"]
                if (service := questions.get("service_single_ms_p50"))
                else []
            ),
            f"| questions in batches of 8 | {questions.get('batch8_per_s', 0):.0f}/s |",
            f"| questions in batches of 32 | {questions.get('batch32_per_s', 0):.0f}/s |",
        ]
        if passages:
            out.append(
                f"| passages ({passages['mean_chars']:.0f} chars on average) | {passages['per_s']:.1f}/s |"
            )
    http = results.get("http", {})
    if http.get("runs"):
        out += [
            "",
            f"## Queries over HTTP ({http.get('chunks', '?')} chunks, k=5){quick}",
            "",
            "| mode | concurrency | p50 ms | p95 ms | p99 ms | queries/s | load generator cores | server cores |",
            "|---|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {r['mode']} | {r['concurrency']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['per_s']:.0f} | {r['client_cores']:.2f} | {r['server_cores']:.2f} |"
            for r in http["runs"]
        ]
        out += [
            "",
            f"Server start-up to first answer: {http.get('startup_s', 0):.1f} s; peak memory "
            f"{http.get('peak_memory_mb') or 0:.0f} MB.",
        ]
    builds = results.get("build", {})
    if builds:
        out += [
            "",
            f"## Build throughput{quick}",
            "",
            "Each build is a real `Engine.sync` into a fresh directory; *encoding* is time inside the "
            "model, *token counting* is the chunker measuring word pieces, *other* is everything "
            "else (sentence splitting, hashing, BM25, FAISS, writing). Standalone sentence vectors "
            "embed every sentence a second time on its own; contextual ones are pooled from the "
            "chunk's own forward pass.",
            "",
            "| corpus | sentence vectors | documents | chunks | sentences | seconds | encoding s | "
            "token counting s | other s | chunks/s | bare encoding/s | ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {b.get('corpus', name)} | {b.get('sentence_vectors', '?')} | {b['documents']} | "
            f"{b['chunks']} | {b['sentences']} | {b['seconds']:.1f} | {_figure(b, 'encode_s')} | "
            f"{_figure(b, 'count_tokens_s')} | {_figure(b, 'other_s')} | {b['chunks_per_s']:.1f} | "
            f"{b['floor']['per_s']:.1f} | {b['ratio_to_floor']:.2f} |"
            for name, b in builds.items()
        ]
    rows = results.get("scaling", {}).get("rows", [])
    if rows:
        out += [
            "",
            f"## Search cost as the index grows (one query, 100 candidates){quick}",
            "",
            "![latency against corpus size](bench.png)",
            "",
            "| index | data | chunks | p50 ms | p95 ms | recall@10 | build s | bytes/chunk | parameters |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {r['index']} | {r['data']} | {r['chunks']:,} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
            f"{r.get('recall_at_10', '')} | {r['build_s']} | {r['bytes_per_chunk']:.0f} | "
            f"{r.get('parameters') or str(r.get('tokens_per_chunk')) + ' stems/chunk'} |"
            for r in rows
        ]
    out += _onnx_markdown(results.get("onnx") or {}, quick)
    return "\n".join(out) + "\n"


def _figure(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:.1f}" if key in row else ""


def _onnx_markdown(onnx: dict[str, Any], quick: str) -> list[str]:
    if "skipped" in onnx:
        return ["", f"## ONNX int8 backend{quick}", "", f"Not measured: {onnx['skipped']}"]
    if "default" not in onnx:
        return []
    base, fast = onnx["default"], onnx["onnx_int8"]
    lines = [
        "",
        f"## ONNX int8 backend against the default (PyTorch float32){quick}",
        "",
        *([onnx["note"], ""] if onnx.get("note") else []),
        "| | default | ONNX int8 |",
        "|---|---|---|",
        f"| one question | {base['questions']['single_ms_p50']:.1f} ms | {fast['questions']['single_ms_p50']:.1f} ms |",
        f"| questions in batches of 8 | {base['questions']['batch8_per_s']:.0f}/s | {fast['questions']['batch8_per_s']:.0f}/s |",
        f"| passages | {base['passages']['per_s']:.1f}/s | {fast['passages']['per_s']:.1f}/s |",
    ]
    for key in base["quality"]:
        if key.startswith("ndcg"):
            lines.append(
                f"| {key} | {base['quality'][key]:.4f} | {fast['quality'][key]:.4f} "
                f"({fast['quality'][key] - base['quality'][key]:+.4f}) |"
            )
    documents = int(base["quality"].get("scifact_subset_documents", 0))
    if documents:
        queries = int(base["quality"].get("scifact_queries", 0))
        lines += [
            "",
            f"SciFact subset: {documents} documents (every judged one plus random others), {queries} queries.",
        ]
    return lines


def _plot(rows: list[dict[str, Any]], handle: BinaryIO) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    for index in ("flat", "ivf", "hnsw", "bm25"):
        points = sorted(
            (r["chunks"], r["p50_ms"]) for r in rows if r["index"] == index and r["data"] != "gaussian"
        )
        if points:
            label = {"flat": "FAISS exact (flat)", "ivf": "FAISS IVF", "hnsw": "FAISS HNSW", "bm25": "BM25"}[
                index
            ]
            axes.plot(*zip(*points, strict=True), marker="o", label=label)
    axes.axhline(5, color="grey", linestyle=":", label="5 ms target (approximate index)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("chunks in the index")
    axes.set_ylabel("p50 search latency, ms (one query, 100 candidates)")
    axes.set_title("Search cost against corpus size")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(handle, format="png", dpi=110)
    pyplot.close(figure)
