"""`python -m eval.bench.backend_quality`: one encoder backend on every eval set the project has.

Runs dense and hybrid (and, on SciFact, `hybrid-doc`) with the service's default index settings
and retrieval options on: the project set over the bundled corpus, `scifact-fit` and
`scifact-heldout` over their own abstracts, and SciFact's train split, over the whole corpus or
over the benchmark's sub-corpus (`--scifact-subset N`: every judged document plus random others,
as `eval.bench.onnx` does). Indexes and embeddings are cached in `--cache-dir`, so the backends can
be run one after the other (or again) without re-embedding. One JSON file per run: the set, the
mode, nDCG@10 and hit@1 / recall@1. It measures only; it chooses nothing (the held-out set is
reported, never tuned on). Also `--agreement N`: per-text cosine between the two backends' vectors
on N SciFact documents' passages and the seed questions.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from corpus import Document, load_corpus
from eval.backends import DocumentMode, InProcessBackend
from eval.beir import cached_index
from eval.bench.onnx import sub_corpus
from eval.report import EvalReport
from eval.runner import evaluate_beir_set, evaluate_project_set
from eval.sets import load_beir_set, load_question_set, set_documents
from index.embedding import Embedder, SentenceTransformerEmbedder
from index.search.modes import Mode
from index.search.retrieval import Retriever
from index.settings import IndexSettings
from index.text.chunking import chunk_document, make_splitter
from index.write.building import embedded_passage
from service.config import PROJECT_ROOT, Settings

SETS = PROJECT_ROOT / "eval" / "sets"
PROJECT_SETS = {
    "seed": (SETS / "seed-articles.jsonl", None),
    "scifact-fit": (SETS / "scifact-fit.jsonl", "corpus.jsonl"),
    "scifact-heldout": (SETS / "scifact-heldout.jsonl", "corpus.jsonl"),
}
BACKENDS = ("default", "onnx-int8")


def embedder_of(backend: str, model_dir: Path) -> Embedder:
    default = SentenceTransformerEmbedder()
    if backend == "default":
        return default
    from index.onnx_embedding import OnnxEmbedder, export_int8

    export_int8(default, model_dir)
    return OnnxEmbedder(model_dir, f"{default.model_name}-onnx-int8")


def run(arguments: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    index_settings, options = settings.index_settings(), settings.retrieval_options()
    embedder = embedder_of(arguments.backend, arguments.cache_dir / "onnx")
    figures: dict[str, Any] = {"backend": arguments.backend, "model": embedder.model_name, "sets": {}}

    def retriever(documents: list[Document], with_sentences: bool) -> Retriever:
        reader = cached_index(
            documents, embedder, index_settings, arguments.cache_dir, with_sentences=with_sentences
        )
        return Retriever(reader, embedder, options)

    def record(name: str, report: EvalReport, seconds: float) -> None:
        figures["sets"][name] = {
            "seconds": round(seconds, 1),
            "questions": report.queries,
            **{str(result.mode): _figures(result.metrics) for result in report.modes},
        }
        click.echo(f"{name} {json.dumps(figures['sets'][name])}")
        arguments.out.write_text(json.dumps(figures, indent=2) + "\n", "utf-8")

    for name in arguments.sets:
        began = time.perf_counter()
        if name in PROJECT_SETS:
            path, corpus_file = PROJECT_SETS[name]
            documents = (
                set_documents(path, arguments.scifact / corpus_file)
                if corpus_file
                else load_corpus([PROJECT_ROOT / "corpus" / "articles"])
            )
            backend = InProcessBackend(retriever(documents, with_sentences=True))
            report = evaluate_project_set(name, load_question_set(path), backend, (Mode.DENSE, Mode.HYBRID))
        else:
            beir = load_beir_set(arguments.scifact, "train")
            documents = load_corpus([beir.corpus_path])
            if arguments.scifact_subset:
                documents = sub_corpus(documents, beir.qrels, arguments.scifact_subset)
                name = f"{name}-subset{arguments.scifact_subset}"
            backend = InProcessBackend(retriever(documents, with_sentences=False))
            modes: tuple[DocumentMode, ...] = (Mode.DENSE, Mode.HYBRID, "hybrid-doc")
            report = evaluate_beir_set(name, beir, backend, modes)
        record(name, report, time.perf_counter() - began)
    return figures


def _figures(metrics: dict[str, float]) -> dict[str, float]:
    keys = ("ndcg@10", "hit_rate@1", "recall@1", "mrr@10")
    return {key: round(float(metrics[key]), 4) for key in keys if key in metrics}


def agreement(scifact: Path, documents: int, model_dir: Path) -> dict[str, Any]:
    """Cosine between the default's and the ONNX backend's vector of the same text: passages as
    the build embeds them (title prefix), by length in word pieces, and the seed questions."""
    default = SentenceTransformerEmbedder()
    onnx = embedder_of("onnx-int8", model_dir)
    index_settings = IndexSettings()
    splitter = make_splitter(index_settings.chunker, default.count_tokens)
    chosen = random.Random(0).sample(load_corpus([scifact / "corpus.jsonl"]), documents)
    chosen += load_corpus([PROJECT_ROOT / "corpus" / "articles"])
    passages = [
        embedded_passage(chunk, document, index_settings)
        for document in chosen
        for chunk in chunk_document(document, splitter)
    ]
    questions = [q.question for q in load_question_set(SETS / "seed-articles.jsonl")]
    lengths = np.array([default.count_tokens(text) + 2 for text in passages])  # + [CLS], [SEP]
    cosines = np.sum(default.embed_batch(passages) * onnx.embed_batch(passages), axis=1)
    question_cosines = np.sum(default.embed_batch(questions) * onnx.embed_batch(questions), axis=1)
    by_length = {}
    for low, high in ((0, 64), (64, 128), (128, 192), (192, 257)):
        inside = (lengths >= low) & (lengths < high)
        if inside.any():
            by_length[f"{low}-{high - 1} tokens"] = [
                int(inside.sum()),
                round(float(cosines[inside].mean()), 4),
            ]
    return {
        "passages": len(passages),
        "longest_tokens": int(lengths.max()),
        "over_max_seq_length": int((lengths > default.max_tokens).sum()),
        "passage_cosine": _summary(cosines),
        "passage_cosine_by_length": by_length,
        "question_cosine": _summary(question_cosines),
    }


def _summary(values: np.ndarray[Any, Any]) -> dict[str, float]:
    return {
        "mean": round(float(values.mean()), 4),
        "min": round(float(values.min()), 4),
        "p5": round(float(np.percentile(values, 5)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=BACKENDS, default="default")
    parser.add_argument(
        "--sets",
        nargs="+",
        default=[*PROJECT_SETS, "scifact-train"],
        choices=[*PROJECT_SETS, "scifact-train"],
    )
    parser.add_argument("--scifact", type=Path, default=PROJECT_ROOT.parent / "shared" / "beir" / "scifact")
    parser.add_argument("--scifact-subset", type=int, default=0, help="SciFact documents (0: all).")
    parser.add_argument("--cache-dir", type=Path, default=PROJECT_ROOT / ".rag" / "backend-quality")
    parser.add_argument("--out", type=Path, default=Path("backend-quality.json"))
    parser.add_argument("--agreement", type=int, default=0, help="Only the vector agreement, on N documents.")
    arguments = parser.parse_args()
    if arguments.agreement:
        figures = agreement(arguments.scifact, arguments.agreement, arguments.cache_dir / "onnx")
        click.echo(json.dumps(figures, indent=2))
        return
    run(arguments)


if __name__ == "__main__":
    main()
