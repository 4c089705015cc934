"""`python -m eval.bench`: run every benchmark phase and write eval/reports/bench.{json,md,png}.

Phases, in order (the JSON is rewritten after each one, so a failure keeps what was measured):
floor (bare encoding), builds (bundled corpus, SciFact), HTTP load against a real server
(concurrency 1, 8, 32 for each mode), index growth (10k to 1M chunks). `--quick` shrinks every
phase for a smoke run; figures from a quick run are not worth reporting.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from corpus import load_corpus
from eval.bench.building import sample_passages, timed_build
from eval.bench.encoding import passage_floor, question_floor
from eval.bench.load import run_load
from eval.bench.report import write_reports
from eval.bench.scaling import bm25_scaling, vector_scaling
from eval.bench.server import running_server
from index.embedding import SentenceTransformerEmbedder
from index.lexical import stem_tokens
from index.retrieval import MODES
from index.store import IndexStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUNDLED = PROJECT_ROOT / "corpus" / "articles"
SEED_QUESTIONS = PROJECT_ROOT / "eval" / "sets" / "seed-articles.jsonl"
CANDIDATES = 100  # what the service asks each index for (RetrievalOptions.candidates)


def main() -> None:
    arguments = _parser().parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    work = arguments.work_dir
    work.mkdir(parents=True, exist_ok=True)
    quick = arguments.quick
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "quick": quick,
        "cpus": os.cpu_count(),
    }

    def save() -> None:
        write_reports(results, arguments.out)

    embedder = SentenceTransformerEmbedder()
    scifact = arguments.scifact if arguments.scifact and arguments.scifact.is_dir() else None
    questions = _questions(scifact)
    random.Random(0).shuffle(questions)

    if arguments.rerun_http:
        # Floor and HTTP again, together, over the index a previous run built; the rest is kept.
        results = {
            **json.loads((arguments.out / "bench.json").read_text("utf-8")),
            "http_rerun": results["started"],
        }
        served = work / ("scifact-index" if scifact is not None else "bundled-index")
        say("floor: bare question encoding")
        results["floor"]["questions_before_http"] = question_floor(embedder, questions[:240], (8, 32))
        say(f"http: server over {served.name}")
        results["http"] = _http_phase(served, questions, quick)
        save()
        return

    say("floor: bare question encoding")
    results["floor"] = {"questions": question_floor(embedder, questions[: 60 if quick else 240], (8, 32))}

    say("build: bundled corpus")
    results["build"] = {}
    bundled = timed_build(load_corpus([BUNDLED]), embedder, work / "bundled-index")
    results["build"]["bundled"] = _build_figures(bundled, passage_floor(embedder, bundled.passages_sample))
    passage_sample = bundled.passages_sample
    save()
    served = work / "bundled-index"
    if scifact is not None:
        documents = load_corpus([scifact / "corpus.jsonl"])
        if arguments.scifact_docs:
            documents = sorted(documents, key=lambda d: d.id)[: arguments.scifact_docs]
        # The floor is measured just before and just after the build, on the same passages, and
        # averaged: on a shared machine the load can change while a build runs.
        passage_sample = sample_passages(documents, embedder, 128 if quick else 384)
        floor_before = passage_floor(embedder, passage_sample)
        say(f"build: SciFact ({len(documents)} documents)")
        built = timed_build(documents, embedder, work / "scifact-index")
        floor_after = passage_floor(embedder, passage_sample)
        floor = {
            **floor_after,
            "per_s": (floor_before["per_s"] + floor_after["per_s"]) / 2,
            "per_s_before_build": floor_before["per_s"],
            "per_s_after_build": floor_after["per_s"],
        }
        results["build"]["scifact"] = _build_figures(built, floor)
        results["floor"]["passages"] = floor
        served = work / "scifact-index"
    else:
        results["floor"]["passages"] = results["build"]["bundled"]["floor"]
    save()

    say("floor: bare question encoding again, right before the HTTP phase")
    results["floor"]["questions_before_http"] = question_floor(
        embedder, questions[: 60 if quick else 240], (8, 32)
    )
    say(f"http: server over {served.name}")
    results["http"] = _http_phase(served, questions, quick)
    save()

    say("scaling: vectors and BM25")
    results["scaling"] = {"rows": []}
    _scaling_phase(embedder, served, questions, arguments, results["scaling"], save)
    if arguments.onnx_subset:
        say("onnx: int8 backend against the default")
        results["onnx"] = _onnx_phase(embedder, questions, passage_sample, scifact, arguments)
        save()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    save()
    say(f"wrote {arguments.out}/bench.json, bench.md, bench.png")


def _onnx_phase(
    embedder: SentenceTransformerEmbedder,
    questions: list[str],
    passages: list[str],
    scifact: Path | None,
    arguments: Any,
) -> dict[str, Any]:
    try:
        from eval.bench.onnx import onnx_comparison
    except ImportError as error:  # the optional `onnx` extra is not installed
        return {"skipped": f"{error}; install with pip install -e '.[onnx]'"}
    return onnx_comparison(
        embedder,
        arguments.work_dir / "onnx" / embedder.model_name,
        questions[:120],
        passages[:256],
        load_corpus([BUNDLED]),
        SEED_QUESTIONS,
        scifact,
        200 if arguments.quick else arguments.onnx_subset,
    )


def say(message: str) -> None:
    click.echo(message, err=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval.bench", description=__doc__)
    parser.add_argument("--scifact", type=Path, default=PROJECT_ROOT.parent / "shared" / "beir" / "scifact")
    parser.add_argument(
        "--scifact-docs", type=int, default=0, help="Build only the first N documents (0: all)."
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "eval" / "reports")
    parser.add_argument("--work-dir", type=Path, default=PROJECT_ROOT / ".rag" / "bench")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="Index sizes for the growth phase.")
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="Largest size HNSW is built at.")
    parser.add_argument(
        "--onnx-subset",
        type=int,
        default=1000,
        help="SciFact documents for the ONNX quality check (0: skip).",
    )
    parser.add_argument("--quick", action="store_true", help="Smoke run: tiny phases.")
    parser.add_argument(
        "--rerun-http",
        action="store_true",
        help="Measure only the question floor and the HTTP phase again (over the index of the last "
        "run in --work-dir) and update the report: for a quieter moment on a shared machine.",
    )
    return parser


def _questions(scifact: Path | None) -> list[str]:
    path = scifact / "queries.jsonl" if scifact else SEED_QUESTIONS
    field = "text" if scifact else "question"
    lines = path.read_text("utf-8").splitlines()
    return list(dict.fromkeys(json.loads(line)[field] for line in lines if line.strip()))


def _build_figures(built: Any, floor: dict[str, Any]) -> dict[str, Any]:
    return {
        "documents": built.documents,
        "chunks": built.chunks,
        "sentences": built.sentences,
        "seconds": round(built.seconds, 2),
        "chunks_per_s": round(built.chunks_per_s, 2),
        "floor": floor,
        "ratio_to_floor": round(built.chunks_per_s / floor["per_s"], 3) if floor["per_s"] else None,
    }


def _http_phase(index_dir: Path, questions: list[str], quick: bool) -> dict[str, Any]:
    figures: dict[str, Any] = {"runs": []}
    requests = {1: 40, 8: 80, 32: 160} if quick else {1: 300, 8: 800, 32: 1600}
    with running_server(index_dir, questions[-1]) as server:
        figures["startup_s"] = round(server.startup_seconds, 2)
        figures["memory_after_start_mb"] = server.memory_mb()
        for mode in MODES:
            for concurrency, count in requests.items():
                say(f"  {mode} c={concurrency}")
                run = run_load(server.url, questions, concurrency, count, mode, server.cpu_seconds)
                figures["runs"].append(run.as_dict())
        figures["peak_memory_mb"] = server.peak_memory_mb()
    chunks = len(IndexStore(index_dir).load().data.chunks)
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
    data = IndexStore(index_dir).load().data
    sizes = [2_000, 20_000] if arguments.quick else [int(size) for size in arguments.sizes.split(",")]
    query_texts = questions[:200]
    query_vectors = embedder.embed_batch(query_texts)
    sentences = [
        data.documents[chunk.document_id].text[start:end]
        for row, chunk in enumerate(data.chunks)
        for _, start, end in data.chunk_sentences(row)
    ]
    sentence_tokens = [tokens for tokens in stem_tokens(sentences) if tokens]
    tokens_per_chunk = float(np.mean([len(tokens) for tokens in stem_tokens([c.text for c in data.chunks])]))
    figures.update(real_vectors=len(data.chunk_vectors), queries=len(query_texts))
    for size in sizes:
        kinds = ["ivf", "hnsw"] if size <= arguments.hnsw_max else ["ivf"]
        say(f"  vectors {size}: flat, {', '.join(kinds)}")
        figures["rows"].extend(vector_scaling(data.chunk_vectors, query_vectors, size, CANDIDATES, kinds))
        save()
        say(f"  vectors {size}: flat, ivf on a plain Gaussian (worst case)")
        rows = vector_scaling(data.chunk_vectors, query_vectors, size, CANDIDATES, ["ivf"], anchored=False)
        figures["rows"].extend(row for row in rows if row["index"] == "ivf")
        save()
        say(f"  bm25 {size}")
        figures["rows"].append(bm25_scaling(sentence_tokens, tokens_per_chunk, query_texts, size, CANDIDATES))
        save()


if __name__ == "__main__":
    main()
