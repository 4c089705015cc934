"""The eval sets through the real model: hybrid beats dense, off-topic questions are flagged and
plainly answered ones never are.

General properties, not today's figures: every question of kind `off-topic` is flagged
(`answerable` false), and no answerable question (its gold answer stated verbatim in a document)
is. The project set runs on the bundled corpus; the SciFact sets, written over abstracts of
../shared/beir/scifact that the project never ships, run only where that directory exists. The
held-out set is only checked here, never tuned on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus import load_corpus
from eval.backends import InProcessBackend
from eval.beir import cached_index
from eval.report import EvalReport
from eval.runner import evaluate_project_set
from eval.sets import corpus_ids, load_question_set
from index.embedding import SentenceTransformerEmbedder
from index.search.modes import Mode
from index.search.options import RetrievalOptions
from index.search.retrieval import Retriever
from index.settings import IndexSettings
from service.engine import Engine
from tests.conftest import PROJECT_ROOT
from tests.test_eval_sets import SEED_SET

pytestmark = pytest.mark.integration

SCIFACT = PROJECT_ROOT.parent / "shared" / "beir" / "scifact" / "corpus.jsonl"
SCIFACT_SETS = [PROJECT_ROOT / "eval" / "sets" / f"scifact-{name}.jsonl" for name in ("fit", "heldout")]


@pytest.fixture(scope="module")
def report(real_engine: Engine) -> EvalReport:
    questions = load_question_set(SEED_SET)
    backend = InProcessBackend(real_engine.retriever)
    return evaluate_project_set(
        "seed-articles", questions, backend, [Mode.DENSE, Mode.HYBRID], test="student"
    )


def assert_abstains_well(report: EvalReport) -> None:
    abstention = report.mode("hybrid").abstention
    assert abstention["answerable_flagged"] == 0, abstention
    assert abstention["kind:off-topic_flagged"] == abstention["kind:off-topic"] > 0, abstention


def test_hybrid_beats_dense(report: EvalReport) -> None:
    hybrid, dense = report.mode("hybrid").metrics, report.mode("dense").metrics
    assert hybrid["hit_rate@1"] > dense["hit_rate@1"]
    assert report.mode("hybrid").significance["mrr@10"].significant


def test_project_set_flags_off_topic_questions_and_no_answerable_one(report: EvalReport) -> None:
    assert_abstains_well(report)


@pytest.mark.skipif(not SCIFACT.is_file(), reason="needs ../shared/beir/scifact beside the project")
@pytest.mark.parametrize("path", SCIFACT_SETS, ids=lambda path: path.stem)
def test_scifact_sets_flag_off_topic_questions_and_no_answerable_one(
    path: Path, real_embedder: SentenceTransformerEmbedder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    wanted = set(corpus_ids(path) or [])
    documents = [d for d in load_corpus([SCIFACT]) if d.id in wanted]
    reader = cached_index(documents, real_embedder, IndexSettings(), tmp_path_factory.mktemp("scifact"))
    backend = InProcessBackend(Retriever(reader, real_embedder, RetrievalOptions()))
    assert_abstains_well(evaluate_project_set(path.stem, load_question_set(path), backend, [Mode.HYBRID]))
