"""`python -m eval.bench`: run every benchmark phase and write eval/reports/bench.{json,md,png}.

Phases, in order (the JSON is rewritten after each one, so a failure keeps what was measured):
floor (bare encoding), builds (bundled corpus, then the first 2000 SciFact documents, each in
both sentence-vector modes), HTTP load against a real server (concurrency 1, 8, 32 for each
mode), baseline (the current code's HTTP figures beside an earlier commit's, interleaved, on the
bundled corpus: `eval.bench.baseline`), index growth (10k to 1M chunks), filters (hybrid search
over 100k synthetic chunks with and without filters: `eval.bench.filtering`), the int8 ONNX
backend: about 30 min on 2 quiet cores.

`--quick` is a smoke run of every phase in about 3 min (100 SciFact documents, growth to 100k,
short HTTP runs, no ONNX unless `--onnx-subset` is given); it writes to .rag/bench/quick-report,
never to eval/reports, and its report says it is a quick run: its figures are not worth quoting.

`--phase NAME` (repeatable) runs the segmented index's phases instead (writes, ingest, segments,
footprint, build, writers, large, pq: `eval.bench.phases`), adding their sections to the report
in `--out` (eval/reports/segments by default); with `--quick`, each shrunk to a smoke run. `--phase
baseline` or `--phase filters` alone runs that phase and updates its section of
eval/reports/bench.md; so does `--phase cluster` (issue 22: a local Ray cluster's build and
sharded serving against one process, `eval.bench.cluster`), which only runs when asked for.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from corpus import load_corpus
from eval.bench.baseline import BASELINE_FAILURES
from eval.bench.building import SENTENCE_VECTOR_MODES, BuildFigures, sample_passages, timed_build
from eval.bench.encoding import passage_floor, served_question_floor
from eval.bench.load import run_load
from eval.bench.report import write_reports
from eval.bench.scaling import bm25_scaling, vector_scaling
from eval.bench.server import running_server
from eval.bench.synthetic import scifact_documents, scifact_questions
from index.embedding import SentenceTransformerEmbedder
from index.search.modes import Mode
from index.search.options import RetrievalOptions
from index.search.reader import IndexReader
from index.storage.store import IndexStore
from index.text.analysis import terms
from service.cli import OPENMP_ENVIRONMENT
from service.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUNDLED = PROJECT_ROOT / "corpus" / "articles"
SEED_QUESTIONS = PROJECT_ROOT / "eval" / "sets" / "seed-articles.jsonl"
QUICK_REPORT = PROJECT_ROOT / ".rag" / "bench" / "quick-report"  # never eval/reports
CANDIDATES = RetrievalOptions().candidates  # what the service asks each index for
# All of SciFact (5,183 documents, ~11.6k chunks) would take ~21 min to build in standalone mode
# alone on 2 cores (9.2 chunks/s): the first 2000 by id keep `make bench` near half an hour.
SCIFACT_DOCS = 2000
QUICK_SCIFACT_DOCS = 100
ONNX_SUBSET = 800  # SciFact documents for the ONNX quality check
FULL_SIZES = "10000,100000,1000000"
QUICK_SIZES = "10000,100000"
QUICK_REQUESTS = {1: 20, 8: 40, 32: 64}
FULL_REQUESTS = {1: 300, 8: 800, 32: 1600}


def main() -> None:
    arguments = _parser().parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name, value in OPENMP_ENVIRONMENT.items():  # the floor measured as `rag serve` runs the model
        os.environ.setdefault(name, value)
    quick = arguments.quick
    work = arguments.work_dir or PROJECT_ROOT / ".rag" / "bench" / ("quick" if quick else "")
    reports = PROJECT_ROOT / "eval" / "reports"
    from eval.bench.phases import MAIN_REPORT_PHASES, run_baseline, run_filters

    segmented = bool(set(arguments.phase) - MAIN_REPORT_PHASES)
    out = arguments.out or (QUICK_REPORT if quick else reports / "segments" if segmented else reports)
    arguments.work_dir, arguments.out = work, out
    work.mkdir(parents=True, exist_ok=True)
    if arguments.phase:
        from eval.bench.phases import run_phases

        run_phases(arguments, say)
        say(f"wrote {out}/bench.json, bench.md")
        return
    started = time.perf_counter()
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "quick": quick,
        "cpus": os.cpu_count(),
    }

    def save(phase: str = "") -> None:
        results["wall_s"] = round(time.perf_counter() - started, 1)
        if phase:  # seconds from the start to the end of each phase: where a run spends its time
            results.setdefault("phase_end_s", {})[phase] = results["wall_s"]
        write_reports(results, out)

    embedder = SentenceTransformerEmbedder()
    scifact = arguments.scifact if arguments.scifact and arguments.scifact.is_dir() else None
    questions = _questions(scifact)
    random.Random(0).shuffle(questions)
    floor_questions = questions[: 60 if quick else 240]

    if arguments.rerun_http:
        # Floor and HTTP again, together, over the index a previous run built; the rest is kept.
        results = _previous_results(out, "http_rerun", results["started"])
        served = work / ("scifact-index" if scifact is not None else "bundled-index")
        say("floor: bare question encoding")
        results["floor"]["questions_before_http"] = _question_floor(embedder, floor_questions)
        say(f"http: server over {served.name}")
        results["http"] = _http_phase(served, questions, quick)
        write_reports(results, out)
        return
    if arguments.rerun_onnx:
        results = _previous_results(out, "onnx_rerun", results["started"])
        sampled = load_corpus([scifact / "corpus.jsonl"] if scifact is not None else [BUNDLED])
        passage_sample = sample_passages(sampled, embedder, 384)
        say("onnx: int8 backend against the default")
        results["onnx"] = _onnx_phase(
            embedder, questions, passage_sample, scifact, arguments, _onnx_subset(arguments) or ONNX_SUBSET
        )
        write_reports(results, out)
        return

    say("floor: bare question encoding")
    results["floor"] = {"questions": _question_floor(embedder, floor_questions)}
    results["build"] = {}
    served, passage_sample = _build_phase(embedder, scifact, arguments, results, save)

    say("floor: bare question encoding again, right before the HTTP phase")
    results["floor"]["questions_before_http"] = _question_floor(embedder, floor_questions)
    say(f"http: server over {served.name}")
    results["http"] = _http_phase(served, questions, quick)
    save("http")

    say("baseline: the current code's HTTP figures beside the baseline's, interleaved")
    try:
        results["baseline"] = run_baseline(arguments, say)
    except BASELINE_FAILURES as error:  # the guard reports; it never stops the phases after it
        results["baseline"] = {"error": f"{type(error).__name__}: {error}"[-1500:]}
        say(f"  baseline phase failed: {results['baseline']['error']}")
    save("baseline")

    say("scaling: vectors and BM25")
    results["scaling"] = {"rows": []}
    _scaling_phase(embedder, served, questions, arguments, results["scaling"], save)
    save("scaling")
    say("filters: hybrid search with and without filters (synthetic index)")
    if scifact is None:
        results["filters"] = {"skipped": "no SciFact (--scifact): its index is made of SciFact's sentences"}
    else:
        results["filters"] = run_filters(
            arguments, scifact_documents(scifact), scifact_questions(scifact), say
        )
    save("filters")
    onnx_subset = _onnx_subset(arguments)
    if onnx_subset:
        say("onnx: int8 backend against the default")
        results["onnx"] = _onnx_phase(embedder, questions, passage_sample, scifact, arguments, onnx_subset)
    else:
        why = "not run in --quick mode (pass --onnx-subset N to include it)" if quick else "--onnx-subset 0"
        results["onnx"] = {"skipped": why}
    save("onnx")
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    save()
    say(f"wrote {out}/bench.json, bench.md, bench.png in {results['wall_s']:.0f} s")


def _build_phase(
    embedder: SentenceTransformerEmbedder,
    scifact: Path | None,
    arguments: Any,
    results: dict[str, Any],
    save: Callable[[str], None],
) -> tuple[Path, list[str]]:
    """Both sentence-vector modes on the bundled corpus, then on SciFact; returns the index the
    HTTP phase serves (SciFact, standalone: the service's default) and a passage sample."""
    work, builds = arguments.work_dir, results["build"]
    bundled_documents = load_corpus([BUNDLED])
    bundled_runs = []
    for mode in SENTENCE_VECTOR_MODES:
        say(f"build: bundled corpus, {mode} sentence vectors")
        bundled_runs.append(
            timed_build(bundled_documents, embedder, work / _index_name("bundled", mode), mode)
        )
    passage_sample = bundled_runs[0].passages_sample
    bundled_floor = passage_floor(embedder, passage_sample)
    for built in bundled_runs:
        builds[f"bundled/{built.sentence_vectors}"] = _build_figures("bundled", built, bundled_floor)
    results["floor"]["passages"] = bundled_floor
    save("build bundled")
    if scifact is None:
        return work / "bundled-index", passage_sample
    documents = load_corpus([scifact / "corpus.jsonl"])
    count = arguments.scifact_docs
    if count is None:
        count = QUICK_SCIFACT_DOCS if arguments.quick else SCIFACT_DOCS
    if count:
        documents = sorted(documents, key=lambda d: d.id)[:count]
    # The floor is measured before, between and after the builds on the same passages, and each
    # build is compared with the mean of the two around it: on a shared machine the load changes.
    passage_sample = sample_passages(documents, embedder, 64 if arguments.quick else 384)
    floors = [passage_floor(embedder, passage_sample)]
    for mode in SENTENCE_VECTOR_MODES:
        say(f"build: SciFact ({len(documents)} documents), {mode} sentence vectors")
        built = timed_build(documents, embedder, work / _index_name("scifact", mode), mode)
        floors.append(passage_floor(embedder, passage_sample))
        floor = {
            **floors[-1],
            "per_s": (floors[-2]["per_s"] + floors[-1]["per_s"]) / 2,
            "per_s_before_build": floors[-2]["per_s"],
            "per_s_after_build": floors[-1]["per_s"],
        }
        builds[f"scifact/{mode}"] = _build_figures("scifact", built, floor)
        save(f"build scifact {mode}")
    results["floor"]["passages"] = {
        **floors[-1],
        "per_s": statistics.fmean(f["per_s"] for f in floors),
        "per_s_measurements": [round(f["per_s"], 2) for f in floors],
    }
    save("floor after builds")
    return work / "scifact-index", passage_sample


def _index_name(corpus: str, mode: str) -> str:
    # The default mode keeps the old name: `--rerun-http` serves it.
    return f"{corpus}-index" if mode == "standalone" else f"{corpus}-index-{mode}"


def _onnx_phase(
    embedder: SentenceTransformerEmbedder,
    questions: list[str],
    passages: list[str],
    scifact: Path | None,
    arguments: Any,
    subset: int,
) -> dict[str, Any]:
    from eval.bench.onnx import onnx_comparison

    settings = Settings()  # the service's configuration: the quality to keep is the service's own
    return onnx_comparison(
        embedder,
        settings.index_settings(),
        settings.retrieval_options(),
        arguments.work_dir / "onnx" / embedder.model_name,
        questions[:120],
        passages[:256],
        load_corpus([BUNDLED]),
        SEED_QUESTIONS,
        scifact,
        subset,
    )


def say(message: str) -> None:
    click.echo(message, err=True)


def _previous_results(out: Path, rerun_key: str, started: str) -> dict[str, Any]:
    """The last run's report, to update one phase of it; `rerun_key` records when."""
    return {**json.loads((out / "bench.json").read_text("utf-8")), rerun_key: started}


def _onnx_subset(arguments: Any) -> int:
    if arguments.onnx_subset is not None:
        return int(arguments.onnx_subset)
    return 0 if arguments.quick else ONNX_SUBSET


def _question_floor(embedder: SentenceTransformerEmbedder, questions: list[str]) -> dict[str, Any]:
    return served_question_floor(embedder, questions, (8, 32))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval.bench", description=__doc__)
    parser.add_argument("--scifact", type=Path, default=PROJECT_ROOT.parent / "shared" / "beir" / "scifact")
    parser.add_argument(
        "--scifact-docs",
        type=int,
        default=None,
        help=f"Build only the first N SciFact documents, by id (default {SCIFACT_DOCS}, "
        f"{QUICK_SCIFACT_DOCS} with --quick; 0: all 5,183). For --phase build: default all, "
        "100 with --quick.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="Report directory (default eval/reports; --quick: .rag/bench/quick-report, so a "
        "smoke run never overwrites the committed report).",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="Indexes built here (default .rag/bench, --quick: .rag/bench/quick).",
    )
    parser.add_argument(
        "--sizes",
        default=None,
        help=f"Index sizes for the growth phase (default 10000,100000,1000000; --quick: {QUICK_SIZES}).",
    )
    parser.add_argument(
        "--hnsw-max",
        type=int,
        default=None,
        help="Largest size HNSW is built at (default 100000; --quick: 10000).",
    )
    parser.add_argument(
        "--onnx-subset",
        type=int,
        default=None,
        help=f"SciFact documents for the ONNX quality check (default {ONNX_SUBSET}; 0: skip; --quick skips it unless given).",
    )
    parser.add_argument("--quick", action="store_true", help="Smoke run of every phase, about 3 min.")
    parser.add_argument(
        "--rerun-http",
        action="store_true",
        help="Measure only the question floor and the HTTP phase again (over the index of the last "
        "run in --work-dir) and update the report: for a quieter moment on a shared machine.",
    )
    _phase_options(parser)
    parser.add_argument(
        "--rerun-onnx",
        action="store_true",
        help="Run only the ONNX comparison again and update the report.",
    )
    return parser


def _phase_options(parser: argparse.ArgumentParser) -> None:
    """Options of the segmented index's phases (`eval.bench.phases`); defaults full / --quick."""
    from eval.bench.phases import PHASES

    group = parser.add_argument_group("segmented index phases (--phase)")
    group.add_argument(
        "--phase",
        action="append",
        choices=PHASES,
        default=[],
        help="Run this phase (repeatable) instead of the default ones, updating the report in --out.",
    )
    group.add_argument(
        "--writes-sizes", help="writes: index sizes in documents (5000,50000,200000; quick 2000,5000)."
    )
    group.add_argument(
        "--writes-articles", type=int, help="writes: measured articles per size (30; quick 10)."
    )
    group.add_argument("--writes-warmup", type=int, help="writes: warm-up articles per size (3; quick 2).")
    group.add_argument(
        "--writes-rounds", type=int, help="writes: rounds over the sizes, articles shared out (2; quick 1)."
    )
    group.add_argument(
        "--ingest-documents", type=int, help="ingest: documents in the base index (50000; quick 5000)."
    )
    group.add_argument("--ingest-seconds", type=float, help="ingest: duration of the ingest (600; quick 60).")
    group.add_argument(
        "--ingest-idle-seconds", type=float, help="ingest: idle measurement first (60; quick 20)."
    )
    group.add_argument("--ingest-clients", type=int, help="ingest: concurrent query clients (8).")
    group.add_argument("--segments-documents", type=int, help="segments: first N SciFact documents (0: all).")
    group.add_argument(
        "--segments-queries", type=int, help="segments: SciFact questions timed (300; quick 100)."
    )
    group.add_argument(
        "--footprint-sizes", help="footprint: index sizes in chunks (100000,1000000; quick 10000,100000)."
    )
    group.add_argument(
        "--footprint-queries", type=int, help="footprint: searches in the memory probe (100; quick 50)."
    )
    group.add_argument(
        "--writers-documents", type=int, help="writers: documents POSTed by each run (2000; quick 300)."
    )
    group.add_argument(
        "--writers-clients", type=int, help="writers: concurrent writers of the run compared with one (8)."
    )
    group.add_argument("--large-chunks", type=int, help="large: chunks of the index (1000000; quick 200000).")
    group.add_argument("--large-queries", type=int, help="large: searches per probe run (100; quick 50).")
    group.add_argument("--large-rounds", type=int, help="large: probe runs per code (2; quick 1).")
    group.add_argument("--pq-chunks", type=int, help="pq: vectors of each index (1000000; quick 100000).")
    group.add_argument("--pq-queries", type=int, help="pq: SciFact questions, at most 300 (300; quick 100).")
    group.add_argument(
        "--filters-chunks", type=int, help="filters: chunks of each index (100000; quick 20000)."
    )
    group.add_argument(
        "--filters-queries", type=int, help="filters: questions per round and variant (100; quick 30)."
    )
    group.add_argument("--filters-rounds", type=int, help="filters: rounds over the questions (2; quick 1).")
    group.add_argument(
        "--baseline",
        metavar="REF",
        help="baseline: the git ref the current code is measured against (a temporary worktree); "
        "default the newest v* tag before HEAD, else origin/main or main if not HEAD, else HEAD if "
        "the working tree changes index/, service/ or corpus/; 'none': the model floor only.",
    )
    group.add_argument("--baseline-rounds", type=int, help="baseline: interleaved rounds (5; quick 3).")
    group.add_argument(
        "--baseline-c1-requests",
        type=int,
        help="baseline: requests at c=1 per side and round (60; quick 16).",
    )
    group.add_argument(
        "--baseline-c32-requests",
        type=int,
        help="baseline: requests at c=32 per side and round (320; quick 96).",
    )
    _cluster_options(group)
    group.add_argument(
        "--observability-corpus",
        type=Path,
        help="observability: the corpus to serve (a folder or JSONL file; default the bundled "
        "corpus/articles), e.g. ../shared/seed-articles.",
    )
    group.add_argument(
        "--observability-rounds", type=int, help="observability: interleaved rounds (5; quick 3)."
    )
    group.add_argument(
        "--observability-c1-requests",
        type=int,
        help="observability: c=1 requests per side and round (60; quick 20).",
    )
    group.add_argument(
        "--observability-c32-requests",
        type=int,
        help="observability: c=32 requests per side and round (320; quick 96).",
    )
    group.add_argument("--jobs-documents", type=int, help="jobs: articles in the job (50000; quick 1000).")
    group.add_argument(
        "--jobs-posts",
        type=int,
        help="jobs: single POSTs timed (50000; quick 1000; at most --jobs-documents).",
    )
    group.add_argument(
        "--compare-ref",
        help="build, large, filters: also run with the code at this git ref (a temporary worktree), "
        "e.g. 8be8d17 (filters: its unfiltered searches beside the current code's).",
    )


def _cluster_options(group: argparse._ArgumentGroup) -> None:
    """The cluster phase's options (`eval.bench.cluster`); sizes default full / --quick."""
    group.add_argument(
        "--seed",
        type=Path,
        default=PROJECT_ROOT.parent / "shared" / "seed-articles",
        help="cluster: the bundled corpus's directory, read where it lies (default ../shared/seed-articles).",
    )
    group.add_argument(
        "--cluster-docs",
        type=int,
        help="cluster: SciFact documents beside the bundled corpus (1000; quick 100).",
    )
    group.add_argument("--cluster-shards", type=int, help="cluster: shards of the sharded index (3).")
    group.add_argument(
        "--cluster-rounds", type=int, help="cluster: rounds of query runs per side (3; quick 1)."
    )
    group.add_argument(
        "--cluster-c1-requests", type=int, help="cluster: requests at c=1 per side and round (100; quick 20)."
    )
    group.add_argument(
        "--cluster-c32-requests",
        type=int,
        help="cluster: requests at c=32 per side and round (640; quick 96).",
    )
    group.add_argument("--cluster-clients", type=int, help="cluster: querying clients during ingest (8).")
    group.add_argument(
        "--cluster-writers", type=int, help="cluster: writers during ingest, an article a second each (1)."
    )
    group.add_argument(
        "--cluster-idle-seconds", type=float, help="cluster: idle query load before ingest (60; quick 10)."
    )
    group.add_argument(
        "--cluster-ingest-seconds", type=float, help="cluster: ingest duration (120; quick 20)."
    )
    group.add_argument(
        "--cluster-bulk-documents", type=int, help="cluster: articles in the bulk job (100; quick 10)."
    )


def _questions(scifact: Path | None) -> list[str]:
    path = scifact / "queries.jsonl" if scifact else SEED_QUESTIONS
    field = "text" if scifact else "question"
    lines = path.read_text("utf-8").splitlines()
    return list(dict.fromkeys(json.loads(line)[field] for line in lines if line.strip()))


def _build_figures(corpus: str, built: BuildFigures, floor: dict[str, Any]) -> dict[str, Any]:
    return {
        "corpus": corpus,
        "sentence_vectors": built.sentence_vectors,
        "documents": built.documents,
        "chunks": built.chunks,
        "sentences": built.sentences,
        "seconds": round(built.seconds, 2),
        # Where the time went: inside the model, counting word pieces (chunking), everything else.
        "encode_s": round(built.encode_seconds, 2),
        "count_tokens_s": round(built.count_seconds, 2),
        "other_s": round(built.seconds - built.encode_seconds - built.count_seconds, 2),
        "chunks_per_s": round(built.chunks_per_s, 2),
        "floor": floor,
        "ratio_to_floor": round(built.chunks_per_s / floor["per_s"], 3) if floor["per_s"] else None,
    }


def _http_phase(index_dir: Path, questions: list[str], quick: bool) -> dict[str, Any]:
    figures: dict[str, Any] = {"runs": []}
    requests = QUICK_REQUESTS if quick else FULL_REQUESTS
    with running_server(index_dir, questions[-1]) as server:
        figures["startup_s"] = round(server.startup_seconds, 2)
        figures["memory_after_start_mb"] = server.memory_mb()
        for mode in Mode:
            for concurrency, count in requests.items():
                say(f"  {mode} c={concurrency}")
                run = run_load(server.url, questions, concurrency, count, mode, server.cpu_seconds)
                figures["runs"].append(run.as_dict())
        figures["peak_memory_mb"] = server.peak_memory_mb()
    chunks = IndexReader.open(IndexStore(index_dir)).chunk_count
    figures["chunks"] = chunks
    return figures


def _scaling_phase(
    embedder: SentenceTransformerEmbedder,
    index_dir: Path,
    questions: list[str],
    arguments: Any,
    figures: dict[str, Any],
    save: Callable[[], None],
) -> None:
    reader = IndexReader.open(IndexStore(index_dir))
    chunk_rows = range(int(reader.bases[-1]))
    chunk_vectors = reader.chunk_vectors(list(chunk_rows))
    sizes = [
        int(size) for size in (arguments.sizes or (QUICK_SIZES if arguments.quick else FULL_SIZES)).split(",")
    ]
    hnsw_max = (
        arguments.hnsw_max if arguments.hnsw_max is not None else 10_000 if arguments.quick else 100_000
    )
    query_texts = questions[: 100 if arguments.quick else 200]
    query_vectors = embedder.embed_batch(query_texts)
    chunks = [reader.chunk(row) for row in chunk_rows]
    texts = {document.id: document.text for document in reader.documents()}
    sentences = [
        texts[chunk.document_id][sentence.start : sentence.end]
        for row, chunk in zip(chunk_rows, chunks, strict=True)
        for sentence in reader.sentences(row)
    ]
    sentence_tokens = [tokens for tokens in map(terms, sentences) if tokens]
    tokens_per_chunk = float(np.mean([len(terms(c.text)) for c in chunks]))
    figures.update(real_vectors=len(chunk_vectors), queries=len(query_texts))
    for size in sizes:
        kinds = ["ivf", "hnsw"] if size <= hnsw_max else ["ivf"]
        say(f"  vectors {size}: flat, {', '.join(kinds)}")
        figures["rows"].extend(vector_scaling(chunk_vectors, query_vectors, size, CANDIDATES, kinds))
        save()
        say(f"  vectors {size}: flat, ivf on a plain Gaussian (worst case)")
        rows = vector_scaling(chunk_vectors, query_vectors, size, CANDIDATES, ["ivf"], anchored=False)
        figures["rows"].extend(row for row in rows if row["index"] == "ivf")
        save()
        say(f"  bm25 {size}")
        figures["rows"].append(bm25_scaling(sentence_tokens, tokens_per_chunk, query_texts, size, CANDIDATES))
        save()


if __name__ == "__main__":
    main()
