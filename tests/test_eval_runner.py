"""The eval runner and `rag eval` end to end with the fake embedder: in-process and over HTTP
(the same answers either way), TREC run files, the JSON report, the cached BEIR index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from corpus import load_corpus
from eval.backends import HttpBackend, InProcessBackend
from eval.beir import cached_ranking_index
from eval.cli import rag
from eval.runner import evaluate_beir_set, evaluate_project_set
from eval.sets import Question, load_beir_set, load_question_set
from index.embedding import HashingEmbedder
from index.search.options import RetrievalOptions
from index.search.retrieval import Retriever
from index.settings import IndexSettings
from service.config import get_settings
from service.engine import Engine
from tests.conftest import BUNDLED_CORPUS
from tests.test_eval_sets import SEED_SET, write_beir

QUESTIONS = [
    Question("peace", "Peace Pipeline maritime initiatives", ["Peace Pipeline"]),
    Question("trade", "trade volume ten billion dollars", ["ten billion dollars"]),
    Question("none", "zebra quantum lasagna", []),
]


def test_in_process_and_http_agree(fake_engine: Engine, client: TestClient, tmp_path: Path) -> None:
    in_process = evaluate_project_set(
        "tiny", QUESTIONS, InProcessBackend(fake_engine.retriever), ["dense", "bm25"], k=5, test="student"
    )
    over_http = evaluate_project_set(
        "tiny",
        QUESTIONS,
        HttpBackend("", client=client),
        ["dense", "bm25"],
        k=5,
        test="student",
        save_run_dir=tmp_path / "runs",
    )
    assert [m.metrics for m in in_process.modes] == [m.metrics for m in over_http.modes]
    bm25 = over_http.mode("bm25")
    assert bm25.metrics["hit_rate@1"] == 1.0  # both answerable questions name their answer's words
    assert bm25.abstention == {
        "unanswerable": 1,
        "unanswerable_flagged": 1,
        "answerable": 2,
        "answerable_flagged": 0,
    }
    lines = (tmp_path / "runs" / "bm25.trec").read_text().splitlines()
    fields = lines[0].split()
    assert fields[:2] == ["peace", "Q0"] and fields[2].startswith("nournews-larijani-visit#")
    assert fields[3] == "1" and fields[5] == "bm25"
    assert {line.split()[0] for line in lines} == {"peace", "trade"}  # no word of "none" is indexed
    dense_lines = (tmp_path / "runs" / "dense.trec").read_text().splitlines()
    assert {line.split()[0] for line in dense_lines} == {"peace", "trade", "none"}


def test_beir_index_is_cached_and_judged_per_document(tmp_path: Path) -> None:
    data = load_beir_set(write_beir(tmp_path / "tiny"), "train")
    documents = load_corpus([data.corpus_path])
    first = cached_ranking_index(documents, HashingEmbedder(), IndexSettings(), tmp_path / "cache")
    again = cached_ranking_index(documents, HashingEmbedder(), IndexSettings(), tmp_path / "cache")
    assert first.version == again.version and again.chunk_count == first.chunk_count == 2
    assert len(first.segments[0].sentence_vectors) == 0  # ranking-only
    retriever = Retriever(first, HashingEmbedder(), RetrievalOptions())
    report = evaluate_beir_set(
        "tiny", data, InProcessBackend(retriever), ["dense", "bm25", "hybrid"], test="student"
    )
    assert report.mode("bm25").metrics["recall@1"] == 1.0
    assert report.mode("hybrid").metrics["recall@100"] == 1.0


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_CORPUS_DIRS", json.dumps([str(BUNDLED_CORPUS)]))
    monkeypatch.setenv("RAG_EMBEDDER", "hashing")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_rag_eval_prints_the_table_and_writes_json_and_runs(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(rag, ["build"]).exit_code == 0
    result = runner.invoke(
        rag,
        [
            *("eval", str(SEED_SET), "--test", "student", "--quiet"),
            *("--json", str(tmp_path / "r.json")),
            *("--save-run", str(tmp_path / "runs")),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| hybrid |" in result.output and "| dense |" in result.output and "| bm25 |" in result.output
    report = json.loads((tmp_path / "r.json").read_text())["reports"][0]
    assert report["queries"] == len(load_question_set(SEED_SET))
    assert [m["mode"] for m in report["modes"]] == ["dense", "hybrid", "bm25"]  # the baseline first
    recorded = report["details"]["settings"]
    assert recorded["retrieval"] == json.loads(json.dumps(asdict(RetrievalOptions())))
    assert recorded["index"]["sentence_vectors"] == "standalone" and recorded["retrieval"]["bm25_k1"] == 0.9
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["bm25.trec", "dense.trec", "hybrid.trec"]


def test_rag_eval_beir_and_its_errors(runner: CliRunner, tmp_path: Path) -> None:
    beir = write_beir(tmp_path / "tiny")
    ok = runner.invoke(
        rag,
        [
            "eval",
            "beir",
            str(beir),
            "--split",
            "train",
            "--cache-dir",
            str(tmp_path / "c"),
            "--test",
            "student",
            "--quiet",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "R@100" in ok.output and "tiny (train): 2 questions" in ok.output
    assert "| hybrid-doc |" in ok.output and "| hybrid-doc-prf |" in ok.output  # every mode by default
    missing = runner.invoke(rag, ["eval", "beir", str(beir), "--split", "dev"])
    assert missing.exit_code == 1 and "qrels/dev.tsv not found" in missing.output
    assert "Traceback" not in missing.output
    down = runner.invoke(rag, ["eval", str(SEED_SET), "--against", "http://127.0.0.1:9", "--quiet"])
    assert down.exit_code == 1 and "cannot reach the service" in down.output
