"""Writing the benchmark's results: JSON (everything), a markdown table and a PNG plot.

Every file is written to a temporary name, fsynced and renamed into place, so a crashed run
never leaves a half-written report. The markdown leads with the performance targets, each with
the measured figure and whether it was met; the baseline phase (the current code against an
earlier commit's) adds its line and section from `eval.bench.baseline_report`, the filters phase
its lines and section from `eval.bench.filtering_report`, the cluster phase its lines and section
from `eval.bench.cluster_report`, the jobs phase from `eval.bench.jobs`. The segmented
index's phases (`--phase`: writes, ingest, segments, footprint, build, writers) add their targets
to the same table and a section each (`segmented_targets`, `segmented_markdown`), each section
saying when it ran and on what code.
Out of scope: measuring (the phase modules) and any pass/fail exit status.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from eval.bench.baseline_report import baseline_markdown, baseline_targets
from eval.bench.cluster_report import cluster_markdown, cluster_targets
from eval.bench.compressed_report import pq_markdown
from eval.bench.filtering_report import filters_markdown, filters_targets
from eval.bench.jobs import jobs_markdown, jobs_targets
from eval.bench.observability import observability_markdown, observability_targets
from eval.bench.targets import BUILD_TO_PASSAGES, C1_P50_TO_SINGLE, C32_P99_MS, C32_TO_BATCHED
from index.storage.files import write_atomically


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
    buffer = io.BytesIO()
    write(buffer)
    write_atomically(path, buffer.getvalue())


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
    single_ms = floor.get("single_ms_p50")
    one, busy = _run(results, "hybrid", 1), _run(results, "hybrid", 32)
    if one and single_ms:
        ratio = one["p50_ms"] / single_ms
        lines.append(
            (
                f"c=1 p50 over HTTP <= {C1_P50_TO_SINGLE}x bare question encoding",
                f"{one['p50_ms']:.1f} ms vs {single_ms:.1f} ms = {ratio:.2f}x",
                _verdict(ratio <= C1_P50_TO_SINGLE),
            )
        )
        if torch_ms := floor.get("torch_single_ms_p50"):
            lines.append(
                (
                    "(for reference) c=1 p50 over HTTP against the model's own `encode` (PyTorch)",
                    f"{one['p50_ms']:.1f} ms vs {torch_ms:.1f} ms = {one['p50_ms'] / torch_ms:.2f}x",
                    "reported",
                )
            )
    batched = max((rate for name, rate in floor.items() if name.startswith("batch")), default=None)
    if busy and batched:
        ratio = busy["per_s"] / batched
        lines.append(
            (
                f"c=32 throughput >= {C32_TO_BATCHED}x the model's best batched question encoding",
                f"{busy['per_s']:.0f}/s vs {batched:.0f}/s = {ratio:.2f}x "
                f"(load generator: {busy['client_cores']:.2f} cores)",
                _verdict(ratio >= C32_TO_BATCHED),
            )
        )
    if busy:
        limit = C32_P99_MS
        lines.append(
            (f"c=32 p99 <= {limit:.0f} ms", f"{busy['p99_ms']:.0f} ms", _verdict(busy["p99_ms"] <= limit))
        )
    lines += baseline_targets(results)
    lines += filters_targets(results)
    lines += cluster_targets(results)
    lines += observability_targets(results)
    lines += jobs_targets(results)
    for name, build in results.get("build", {}).items():
        if build.get("ratio_to_floor") is not None:
            lines.append(
                (
                    f"build throughput >= {BUILD_TO_PASSAGES}x bare passage encoding ({_build_label(name, build)})",
                    f"{build['chunks_per_s']:.1f} vs {build['floor']['per_s']:.1f} chunks/s = "
                    f"{build['ratio_to_floor']:.2f}x",
                    _verdict(build["ratio_to_floor"] >= BUILD_TO_PASSAGES),
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
    lines += segmented_targets(results)
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
        + (
            ". Produced by `make bench`; floor and service figures are measured in the same run."
            if "floor" in results or "phase_runs" not in results
            else ". Produced by `python -m eval.bench --phase ...`; each section says when it ran."
        ),
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
            f"| one question (the service's question encoder: {questions.get('runtime', 'torch')}) | "
            f"{questions['single_ms_p50']:.1f} ms p50, {questions['single_per_s']:.0f}/s |",
            f"| questions in batches of 8 / 32 | {questions.get('batch8_per_s', 0):.0f}/s / "
            f"{questions.get('batch32_per_s', 0):.0f}/s |",
            *(
                [
                    f"| one question, the model's own `SentenceTransformer.encode` (PyTorch) | {torch:.1f} ms "
                    f"p50; its `embed_batch` {questions.get('torch_service_single_ms_p50', 0):.1f} ms |",
                    f"| the same, batches of 8 / 32 | {questions.get('torch_batch8_per_s', 0):.0f}/s / "
                    f"{questions.get('torch_batch32_per_s', 0):.0f}/s |",
                ]
                if (torch := questions.get("torch_single_ms_p50"))
                else []
            ),
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
    out += baseline_markdown(results, lambda key, title: _phase_heading(results, key, title))
    out += filters_markdown(results, lambda key, title: _phase_heading(results, key, title))
    out += cluster_markdown(results, lambda key, title: _phase_heading(results, key, title))
    out += observability_markdown(results, lambda key, title: _phase_heading(results, key, title))
    out += jobs_markdown(results, lambda key, title: _phase_heading(results, key, title))
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
    out += segmented_markdown(results)
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


# --- the segmented index's phases (`python -m eval.bench --phase ...`) ---------------------------

WRITE_LIMIT_MS = 300.0  # a write's p50, less the article's own embedding, at every size
WRITE_GROWTH = 1.5  # largest index's write p50 against the smallest's
INGEST_P99_GROWTH = 2.0  # query p99 during ingest against idle
SEGMENTS_GROWTH = 1.25  # hybrid p50 over 10 segments against one merged segment
BUILD_GROWTH = 1.10  # build time against the reference commit's
WRITERS_SPEEDUP = 1.5  # documents/s of 8 concurrent writers against one


def segmented_targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) of the write, ingest, segments, footprint and build phases."""
    lines: list[tuple[str, str, str]] = []
    rows = sorted(results.get("writes", {}).get("rows", []), key=lambda r: r["documents"])
    for row in rows:
        less, whole = row["less_embedding"]["p50_ms"], row["latency"]["p50_ms"]
        lines.append(
            (
                f"write p50 less embedding <= {WRITE_LIMIT_MS:.0f} ms ({row['documents']:,} documents)",
                f"{less:.0f} ms (p50 {whole:.0f} ms, p90 {row['latency']['p90_ms']:.0f} ms, "
                f"embedding {row['embedding_ms_median']:.1f} ms)",
                _verdict(less <= WRITE_LIMIT_MS),
            )
        )
    if len(rows) >= 2:
        small, large = rows[0], rows[-1]
        growth = large["latency"]["p50_ms"] / small["latency"]["p50_ms"]
        growth_less = large["less_embedding"]["p50_ms"] / small["less_embedding"]["p50_ms"]
        lines.append(
            (
                f"write p50 at {large['documents']:,} documents within {WRITE_GROWTH}x of "
                f"{small['documents']:,}",
                f"{large['latency']['p50_ms']:.0f} ms vs {small['latency']['p50_ms']:.0f} ms = "
                f"{growth:.2f}x (less embedding {growth_less:.2f}x)",
                _verdict(growth <= WRITE_GROWTH),
            )
        )
    ingest = results.get("ingest", {})
    if ingest.get("ingest"):
        idle, busy = ingest["idle"], ingest["ingest"]
        errors = idle["errors"] + busy["errors"]
        lines.append(
            (
                "ingest: no errors",
                f"{errors} errors ({idle['queries'] + busy['queries']:,} queries, {busy['writes']} writes)",
                _verdict(errors == 0),
            )
        )
        growth = busy["query"]["p99_ms"] / idle["query"]["p99_ms"]
        lines.append(
            (
                f"ingest: query p99 during ingest within {INGEST_P99_GROWTH}x of idle",
                f"{busy['query']['p99_ms']:.0f} ms vs {idle['query']['p99_ms']:.0f} ms = {growth:.2f}x",
                _verdict(growth <= INGEST_P99_GROWTH),
            )
        )
        check = ingest["check"]
        lines.append(
            (
                "ingest: every acknowledged article readable and found by keyword",
                f"{check['checked']} checked: {len(check['missing'])} missing, {len(check['wrong_text'])} "
                f"with other text, {len(check['not_found_bm25_top5'])} not in the BM25 top 5",
                _verdict(bool(check["ok"]) and check["checked"] > 0),
            )
        )
    for threads, run in results.get("segments", {}).get("runs", {}).items():
        split, merged = run["indexes"]["10 segments"], run["indexes"]["1 segment"]
        growth = split["p50_ms"] / merged["p50_ms"]
        lines.append(
            (
                f"hybrid p50 over 10 segments <= {SEGMENTS_GROWTH}x one merged segment (BLAS threads: {threads})",
                f"{split['p50_ms']:.2f} ms vs {merged['p50_ms']:.2f} ms = {growth:.2f}x "
                f"(p99 {split['p99_ms']:.2f} vs {merged['p99_ms']:.2f} ms)",
                _verdict(growth <= SEGMENTS_GROWTH),
            )
        )
    for row in results.get("footprint", {}).get("rows", []):
        share = row["share_by_kind"].get("sentence vectors", 0.0)
        grown = row["resident_growth_bytes_per_chunk"]
        lines.append(
            (
                f"footprint at {row['chunks']:,} chunks ({row['layout']})",
                f"{row['bytes_per_chunk']:,.0f} B/chunk on disk ({100 * share:.0f}% sentence vectors); "
                f"resident after queries +{grown['anon_after_queries']:,.0f} B/chunk own memory, "
                f"+{grown['file_after_queries']:,.0f} B/chunk mapped index files",
                "reported",
            )
        )
    build = results.get("build_compare", {})
    if build.get("reference"):
        current, reference = build["current"]["seconds"], build["reference"]["seconds"]
        lines.append(
            (
                f"build within {100 * (BUILD_GROWTH - 1):.0f}% of {build['reference']['code']}",
                f"{current:.0f} s vs {reference:.0f} s = {current / reference:.2f}x "
                f"({build['current']['documents']:,} documents)",
                _verdict(current <= BUILD_GROWTH * reference),
            )
        )
    elif build.get("current"):
        lines.append(
            (
                "build of SciFact with the real model",
                f"{build['current']['seconds']:.0f} s ({build['current']['documents']:,} documents)",
                "reported",
            )
        )
    lines += _writers_targets(results.get("writers", {}))
    return lines


def _writers_targets(writers: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The concurrent-writers phase: speed-up of the most writers over one, the segment ceiling
    held, nothing acknowledged lost."""
    runs = sorted(writers.get("runs", []), key=lambda run: run["writers"])
    if not runs:
        return []
    one, most = runs[0], runs[-1]
    lines = []
    if writers.get("ratio") is not None:
        lines.append(
            (
                f"writers: {most['writers']} writers >= {WRITERS_SPEEDUP}x the documents/s of {one['writers']}",
                f"{most['documents_per_s']}/s vs {one['documents_per_s']}/s = {writers['ratio']:.2f}x "
                f"({most['documents']:,} documents each)",
                _verdict(writers["ratio"] >= WRITERS_SPEEDUP),
            )
        )
    peak = writers.get("segments_peak")
    if writers.get("ceiling_reported"):
        ceilings = (
            f"{min(run['ceiling']['min'] for run in runs)}-{max(run['ceiling']['max'] for run in runs)}"
        )
        samples = sum(run["samples"] for run in runs)
        lines.append(
            (
                "writers: live segments never above the segment ceiling",
                f"peak {peak} segments, ceiling {ceilings}; {writers['over_ceiling']} of {samples} samples over it",
                _verdict(writers["over_ceiling"] == 0),
            )
        )
    else:
        lines.append(
            (
                "writers: live segments never above the segment ceiling",
                f"peak {peak} segments; `/healthz` reports no `segment_ceiling`",
                _verdict(False),
            )
        )
    acknowledged = sum(run["acknowledged"] for run in runs)
    lines.append(
        (
            "writers: every write acknowledged, none lost",
            f"{acknowledged:,} acknowledged, {writers['failures']} failed, {writers['lost']} lost",
            _verdict(writers["lost"] == 0 and writers["failures"] == 0),
        )
    )
    return lines


def _phase_heading(results: dict[str, Any], key: str, title: str) -> list[str]:
    """A phase section's heading, then when and how its phase ran (commit, load, other CPU use)."""
    heading = ["", f"## {title}", ""]
    run = results.get("phase_runs", {}).get(key)
    if not run:
        return heading
    modified = f"; modified in the working tree: {', '.join(run['modified'])}" if run.get("modified") else ""
    quick = " **QUICK smoke run: not worth quoting.**" if run.get("quick") else ""
    load = f"; load average {run.get('load_before')} before, {run.get('load_after')} after"
    if run.get("environment"):
        load += "; environment " + ", ".join(f"{name}={value}" for name, value in run["environment"].items())
    others = run.get("others") or {}
    if others.get("cores") is not None:
        busiest = "; ".join(f"{o['command']} ({o['cores']:.2f})" for o in others.get("busiest", []))
        load += f"; other processes used {others['cores']:.2f} cores on average" + (
            f" (busiest: {busiest})" if busiest else ""
        )
    return [
        *heading,
        f"Run {run['started']} on commit {run.get('commit', '?')}{modified}{load}"
        + (f"; {run['seconds'] / 60:.1f} min" if run.get("seconds") else "")
        + f".{quick}",
        "",
    ]


def segmented_markdown(results: dict[str, Any]) -> list[str]:
    """The sections of the write, ingest, segments, footprint and build phases, those that ran."""
    out: list[str] = []
    writes = results.get("writes", {})
    if writes.get("rows"):
        out += [
            *_phase_heading(results, "writes", "Writes: one ~3 KB article POSTed to a running server"),
            f"Fake embedder ({writes.get('embedder')}); documents: {writes.get('documents_source')}. "
            "Each base index is built with `IndexWriter` in the benchmark process, then served "
            f"(background merges on); articles are posted one at a time, {writes.get('pause_s')} s "
            f"apart, after a few warm-up ones, in {writes.get('rounds', 1)} round(s) over the sizes "
            "(ascending, then descending; a fresh copy of the base index each time). *Embedding* is the article's own embedding time "
            "(measured in the benchmark process, same embedder, same texts as the writer); "
            "*segment data* is the whole `build_segment_data` for it (chunking, sentences, "
            "embedding, BM25).",
            "",
            "| documents | chunks | segments before → after | p50 ms | p50 less embedding ms | p90 ms | "
            "p99 ms | max ms | embedding ms | segment data ms | errors | server RSS MB | p50 per round ms | "
            "other processes' cores per round |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in sorted(writes["rows"], key=lambda r: r["documents"]):
            latency = row["latency"]
            out.append(
                f"| {row['documents']:,} | {row['chunks']:,} | {row['segments_before']} → "
                f"{row['segments_after']} | {latency['p50_ms']:.1f} | {row['less_embedding']['p50_ms']:.1f} | "
                f"{latency['p90_ms']:.1f} | {latency['p99_ms']:.1f} | {latency['max_ms']:.1f} | "
                f"{row['embedding_ms_median']:.1f} | {row['segment_data_ms_median']:.1f} | {row['errors']} | "
                f"{row.get('server_rss_mb_after') or 0:.0f} | "
                f"{' / '.join(str(r['p50_ms']) for r in row.get('rounds', []))} | "
                f"{' / '.join(str(r['other_cores']) for r in row.get('rounds', []))} |"
            )
        growth = writes.get("largest_to_smallest", {})
        if growth.get("median_ratio"):
            out += [
                "",
                f"Median at {growth['sizes'][1]:,} documents against {growth['sizes'][0]:,}: "
                f"{growth['median_ratio']:.2f}x ({growth['median_less_embedding_ratio']:.2f}x less embedding).",
            ]
    ingest = results.get("ingest", {})
    if ingest.get("ingest"):
        idle, busy = ingest["idle"], ingest["ingest"]
        segments = ingest["segments"]
        check = ingest["check"]
        out += [
            *_phase_heading(results, "ingest", "Sustained ingest: an article a second while clients query"),
            f"Fake embedder ({ingest.get('embedder')}); {ingest['documents_before']:,} documents in "
            f"{ingest['segments_before']} segment(s) at the start; {ingest['clients']} closed-loop clients "
            "posting hybrid `/search` (k=5, SciFact questions), first idle, then while one writer "
            "posts a ~3 KB article every second.",
            "",
            "| | idle | during ingest |",
            "|---|---|---|",
            f"| seconds | {idle['seconds']:.0f} | {busy['seconds']:.0f} |",
            f"| queries | {idle['queries']:,} | {busy['queries']:,} |",
            f"| queries/s | {idle['queries_per_s']} | {busy['queries_per_s']} |",
            f"| query p50 ms | {idle['query']['p50_ms']:.1f} | {busy['query']['p50_ms']:.1f} |",
            f"| query p99 ms | {idle['query']['p99_ms']:.1f} | {busy['query']['p99_ms']:.1f} |",
            f"| query max ms | {idle['query']['max_ms']:.1f} | {busy['query']['max_ms']:.1f} |",
            f"| errors | {idle['errors']} | {busy['errors']} |",
            f"| load generator cores | {idle['client_cores']} | {busy['client_cores']} |",
            f"| server cores | {idle['server_cores']} | {busy['server_cores']} |",
            f"| other processes' cores | {idle.get('other_processes', {}).get('cores', '?')} | "
            f"{busy.get('other_processes', {}).get('cores', '?')} |",
            "",
            f"Writes: {busy['writes']} posted, {ingest['articles_acknowledged']} acknowledged; write "
            f"p50 {busy['write'].get('p50_ms', 0):.0f} ms, p90 {busy['write'].get('p90_ms', 0):.0f} ms, "
            f"max {busy['write'].get('max_ms', 0):.0f} ms. p99 ratio {ingest['p99_ratio']}x, p50 ratio "
            f"{ingest['p50_ratio']}x.",
            "",
            f"Segments during ingest: min {segments['min']}, max {segments['max']}, final "
            f"{segments['final']} ({segments['documents_final']:,} documents). Series (seconds, "
            f"segments): {', '.join(f'{t}:{n}' for t, n in segments['series'])}.",
            "",
            f"Afterwards: {check['checked']} acknowledged articles checked: {len(check['missing'])} "
            f"missing, {len(check['wrong_text'])} with other text, {len(check['not_found_bm25_top5'])} "
            f"not in the BM25 top 5 for their marker word; {check['found_hybrid_top5']} in the hybrid "
            "top 5 for it (the fake embedder's dense half is noise for a made-up word). Server peak "
            f"memory {ingest.get('server_peak_mb') or 0:.0f} MB.",
        ]
    segmented = results.get("segments", {})
    if segmented.get("runs"):
        out += [
            *_phase_heading(results, "segments", "Query latency: 10 segments against one merged segment"),
            f"Fake embedder ({segmented.get('embedder')}); the same documents, in-process "
            f"`Retriever.search` (hybrid, k=5) over {segmented['queries']} SciFact questions with "
            "pre-computed vectors, after a warm-up pass, alternating between the two indexes; with "
            f"BLAS's default threads ({segmented.get('blas_threads_default')}, as the service runs) "
            f"and with BLAS on one thread. Force-merge took {segmented['merge_s']:.1f} s.",
            "",
            "| BLAS threads | index | segments | documents | chunks | p50 ms | p90 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for threads, run in segmented["runs"].items():
            out += [
                f"| {threads} | {name} | {row['segments']} | {row['documents']:,} | {row['chunks']:,} | "
                f"{row['p50_ms']:.2f} | {row['p90_ms']:.2f} | {row['p99_ms']:.2f} | {row['max_ms']:.2f} |"
                for name, row in run["indexes"].items()
            ]
        out += [
            "",
            "Ratio 10 segments / 1: "
            + "; ".join(
                f"BLAS threads {threads}: p50 {run['p50_ratio']}x, p99 {run['p99_ratio']}x"
                for threads, run in segmented["runs"].items()
            )
            + ".",
        ]
    footprint = results.get("footprint", {})
    if footprint.get("rows"):
        out += [
            *_phase_heading(results, "footprint", "Footprint: bytes per chunk on disk and in memory"),
            f"Segments written directly: {footprint.get('vectors')}, "
            f"{footprint.get('sentences_per_chunk')} real SciFact sentences per chunk, "
            f"{footprint.get('chunks_per_document')} chunks per document, BM25 postings of the "
            f"sentences' real terms, segments of up to {footprint.get('segment_chunks'):,} chunks "
            "(`eval.bench.footprint`). Disk: the live commit's files (du of the directory also "
            "counts what the previous commit keeps). Memory: a fresh process opening the index "
            f"(checksums verified) and answering {footprint.get('queries')} hybrid searches; growth "
            "of its resident set per chunk, split into its own memory (*anon*: RssAnon) and pages "
            "of the memory-mapped index files (*file*: RssFile, page cache, shared and reclaimable; "
            "the files were just written, so they are cached and each page fault maps cached "
            "neighbours too: an upper bound of what queries touch). *Peak* is VmHWM, imports "
            "included.",
            "",
            "| chunks | layout | segments | vector index | B/chunk on disk | chunk vectors | sentence vectors | "
            "postings | documents | other | du GB | open: anon / file B/chunk | after queries: anon / "
            "file B/chunk | peak B/chunk | open s | query p50 ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in footprint["rows"]:
            kinds, memory, grown = (
                row["bytes_per_chunk_by_kind"],
                row["memory"],
                row["resident_growth_bytes_per_chunk"],
            )
            out.append(
                f"| {row['chunks']:,} | {row['layout']} | {row['segments']} | {', '.join(row['vector_index'])} | "
                f"{row['bytes_per_chunk']:,.0f} | "
                + " | ".join(
                    f"{kinds.get(kind, 0):,.0f}"
                    for kind in ("chunk vectors", "sentence vectors", "postings", "documents", "other")
                )
                + f" | {row['du_bytes'] / 1e9:.2f} | {grown['anon_after_open']:,.0f} / "
                f"{grown['file_after_open']:,.0f} | {grown['anon_after_queries']:,.0f} / "
                f"{grown['file_after_queries']:,.0f} | {row['peak_bytes_per_chunk']:,.0f} | "
                f"{memory['open_s']:.1f} | {memory['query'].get('p50_ms', 0):.1f} |"
            )
        out += [
            "",
            *(f"{size} chunks: {why}." for size, why in footprint.get("merge_skipped", {}).items()),
        ]
        out += [
            "Sentence vectors' share of the bytes on disk: "
            + ", ".join(
                f"{row['chunks']:,} ({row['layout']}) {100 * row['share_by_kind'].get('sentence vectors', 0):.0f}%"
                for row in footprint["rows"]
            )
            + "."
        ]
    build = results.get("build_compare", {})
    if build.get("current"):
        out += [
            *_phase_heading(results, "build_compare", "Build: `rag build` of SciFact with the real model"),
            f"{build.get('model')}; `Engine.sync` into a fresh directory, timed in a fresh process "
            "per build (model loaded and documents read before the clock starts).",
            "",
            "| code | documents | chunks | seconds | other processes' cores meanwhile |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {build[side]['code']} | {build[side]['documents']:,} | {build[side].get('chunks') or '?'} | "
            f"{build[side]['seconds']:.1f} | {build[side].get('other_cores', '?')} |"
            for side in ("current", "reference")
            if side in build
        ]
        if build.get("ratio"):
            out += ["", f"Current / reference: {build['ratio']:.2f}x."]
    out += _writers_markdown(results)
    out += _large_markdown(results)
    out += pq_markdown(results, lambda key, title: _phase_heading(results, key, title))
    return out


def _large_markdown(results: dict[str, Any]) -> list[str]:
    large = results.get("large", {})
    if not large.get("latency"):
        return []
    out = [
        *_phase_heading(results, "large", "Large index: hybrid query at 1M chunks, dense recall by probes"),
        f"{large['chunks']:,} synthetic chunks in segments of 100k, each with an IVF index "
        "(`eval.bench.large`); a fresh process per run answers "
        f"{large['queries']} hybrid searches (k=5, question vector given: no encoding, random unit "
        "vectors as in the footprint phase) as it maps the index's pages (*first*), then as many "
        "other questions (*warm*: a process that has answered before, as a running server has), "
        "by the same probe whichever the code. *CPU* is the process's time per query, every thread "
        "of it: what a query costs whatever else the machine runs.",
        "",
        "| code | run | first p50 ms | first p90 ms | first CPU p50 ms | warm p50 ms | warm p90 ms | "
        "warm p99 ms | warm CPU p50 ms | open s | other processes' cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    nan = {"p50_ms": float("nan"), "p90_ms": float("nan"), "p99_ms": float("nan")}
    for name, side in large["latency"].items():
        code = f"{name} ({large['reference']})" if name == "reference" else name
        for number, run in enumerate(side["runs"], start=1):
            first, first_cpu = run["query"], run.get("query_cpu", nan)
            warm, warm_cpu = run.get("query_warm", nan), run.get("query_warm_cpu", nan)
            out.append(
                f"| {code} | {number} | {first['p50_ms']:.1f} | {first['p90_ms']:.1f} | "
                f"{first_cpu['p50_ms']:.1f} | {warm['p50_ms']:.1f} | {warm['p90_ms']:.1f} | "
                f"{warm['p99_ms']:.1f} | {warm_cpu['p50_ms']:.1f} | {run['open_s']:.1f} | "
                f"{run.get('other_cores')} |"
            )
    recall = large.get("recall", {})
    if recall.get("rows"):
        out += [
            "",
            f"Dense recall@10 against exact search, {recall['vectors']}; {recall['lists_per_segment']} "
            f"cells per 100k segment, {recall['segment_probes_setting']} probes per segment in the "
            "service when a commit has several; one thread, p50 of the dense search alone:",
            "",
            "| layout | probes | recall@10 | p50 ms |",
            "|---|---|---|---|",
            *(
                f"| {row['layout']} | {row['probes']} | {row['recall_at_10']:.3f} | {row['p50_ms']:.2f} |"
                for row in recall["rows"]
            ),
        ]
    return out


def _writers_markdown(results: dict[str, Any]) -> list[str]:
    writers = results.get("writers", {})
    runs = sorted(writers.get("runs", []), key=lambda run: run["writers"])
    if not runs:
        return []
    out = [
        *_phase_heading(results, "writers", "Concurrent writers: documents/s of one writer against several"),
        f"Fake embedder ({writers.get('embedder')}); each run POSTs the same {writers['documents']:,} "
        "one-sentence documents into a fresh empty index on a fresh server (background merges on), "
        "from that many threads with one request in flight each, while `/healthz` is sampled every "
        f"{1000 * writers.get('sample_every_s', 0):.0f} ms for the live segments and the segment "
        "ceiling. *Commits* are the generations from the start to the last write (merges' "
        "commits included), *write commits* the distinct `index_version`s the writes were "
        "acknowledged with. *Final* segments: once the count stopped changing after the writes.",
        "",
        "| writers | acknowledged | failed | seconds | documents/s | write p50 ms | write p99 ms | commits | "
        "write commits | segments peak | segments final | ceiling | samples over ceiling | lost | "
        "read back, other text | server cores | other processes' cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        ceiling = run["ceiling"]
        shown = f"{ceiling['min']}-{ceiling['max']}" if ceiling["reported"] else "not reported"
        settled = "" if run["segments"]["settled"] else " (still changing)"
        out.append(
            f"| {run['writers']} | {run['acknowledged']:,} of {run['documents']:,} | {run['failures']} | "
            f"{run['seconds']:.1f} | {run['documents_per_s']} | {run['write'].get('p50_ms', 0):.1f} | "
            f"{run['write'].get('p99_ms', 0):.1f} | {run['commits']:,} | {run['write_commits']:,} | "
            f"{run['segments']['peak']} | {run['segments']['final']}{settled} | {shown} | "
            f"{'-' if run['over_ceiling'] is None else run['over_ceiling']} of {run['samples']} | "
            f"{run['lost']} | {run['read_back']}, {run['wrong_text']} | {run.get('server_cores')} | "
            f"{run.get('other_cores')} |"
        )
    out += ["", f"Documents/s of {runs[-1]['writers']} writers against 1: {writers.get('ratio')}x."]
    for run in runs:
        series = ", ".join(f"{t}:{n}" for t, n, _ in run["segments"]["series"])
        out += ["", f"Segments during the run of {run['writers']} writer(s) (seconds:segments): {series}."]
    return out
