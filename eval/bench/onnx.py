"""Is the int8 ONNX backend worth it? Its speed and its retrieval quality against the default.

Speed: the same floor measurements as the default model (questions alone and batched,
passages). Quality: nDCG@10 (dense and hybrid) with each backend on the project's seed set and
on SciFact's judged queries (test split, else train), over a SciFact sub-corpus (every judged document plus random others,
`subset` documents in all) so the comparison fits the benchmark's time; both backends see
exactly the same corpus and queries, so the difference is the backend's. The rule: worth it only
within 0.005 nDCG@10 of the default.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from corpus import Document, load_corpus
from eval.backends import InProcessBackend
from eval.bench.encoding import passage_floor, question_floor
from eval.runner import evaluate_beir_set, evaluate_project_set
from eval.sets import load_beir_set, load_question_set
from index.embedding import Embedder, SentenceTransformerEmbedder, SpanEmbedder
from index.onnx_embedding import OnnxEmbedder, export_int8
from index.search.modes import Mode
from index.search.options import RetrievalOptions
from index.search.retrieval import Retriever
from index.settings import IndexSettings, SentenceVectors
from index.write.writer import build_index

MODES = (Mode.DENSE, Mode.HYBRID)


def onnx_comparison(
    default: SentenceTransformerEmbedder,
    index_settings: IndexSettings,
    options: RetrievalOptions,
    model_dir: Path,
    questions: list[str],
    passages: list[str],
    bundled: list[Document],
    seed_set: Path,
    scifact: Path | None,
    subset: int,
) -> dict[str, Any]:
    export_int8(default, model_dir)
    onnx = OnnxEmbedder(model_dir, f"{default.model_name}-onnx-int8")
    figures: dict[str, Any] = {"model_file": str(model_dir.name)}
    for name, embedder in (("default", default), ("onnx_int8", onnx)):
        figures[name] = {
            "questions": question_floor(embedder.embed_batch, questions, (8,)),
            "passages": passage_floor(embedder, passages),
            "quality": _quality(embedder, index_settings, options, bundled, seed_set, scifact, subset),
        }
    base, fast = figures["default"], figures["onnx_int8"]
    figures["speedup"] = fast["passages"]["per_s"] / base["passages"]["per_s"]
    figures["question_speedup"] = fast["questions"]["single_per_s"] / base["questions"]["single_per_s"]
    deltas = {
        key: fast["quality"][key] - base["quality"][key] for key in base["quality"] if key.startswith("ndcg")
    }
    figures["ndcg_deltas"] = deltas
    figures["ndcg_delta"] = min(deltas.values(), key=lambda delta: -abs(delta))  # the worst one
    return figures


def _quality(
    embedder: Embedder,
    index_settings: IndexSettings,
    options: RetrievalOptions,
    bundled: list[Document],
    seed_set: Path,
    scifact: Path | None,
    subset: int,
) -> dict[str, float]:
    """nDCG@10 per mode with the service's own index settings and retrieval options (an embedder
    without contextual span pooling, like the ONNX one, gets standalone sentence vectors)."""
    scores: dict[str, float] = {}
    if not isinstance(embedder, SpanEmbedder):
        index_settings = replace(index_settings, sentence_vectors=SentenceVectors.STANDALONE)
    temporary = Path(tempfile.mkdtemp(prefix="rag-onnx-"))
    reader = build_index(temporary / "seed", bundled, embedder, settings=index_settings)
    backend = InProcessBackend(Retriever(reader, embedder, options))
    report = evaluate_project_set("seed", load_question_set(seed_set), backend, MODES)
    for result in report.modes:
        scores[f"ndcg@10 seed {result.mode}"] = result.metrics["ndcg@10"]
    if scifact is not None:
        split = next(
            name for name in ("test", "dev", "train") if (scifact / "qrels" / f"{name}.tsv").exists()
        )
        beir = load_beir_set(scifact, split)
        documents = sub_corpus(load_corpus([beir.corpus_path]), beir.qrels, subset)
        reader = build_index(
            temporary / "scifact", documents, embedder, settings=index_settings, with_sentences=False
        )
        backend = InProcessBackend(Retriever(reader, embedder, options))
        report = evaluate_beir_set("scifact", beir, backend, MODES)
        for result in report.modes:
            scores[f"ndcg@10 scifact-subset {result.mode}"] = result.metrics["ndcg@10"]
        scores["scifact_subset_documents"] = float(len(documents))
        scores["scifact_queries"] = float(len(beir.queries))
    shutil.rmtree(temporary, ignore_errors=True)
    return scores


def sub_corpus(documents: list[Document], qrels: dict[str, dict[str, int]], size: int) -> list[Document]:
    judged = {doc_id for judgements in qrels.values() for doc_id in judgements}
    kept = [d for d in documents if d.id in judged]
    others = [d for d in documents if d.id not in judged]
    kept += random.Random(0).sample(others, max(0, min(len(others), size - len(kept))))
    return kept
