"""Eval set loaders: the project set as shipped, BEIR layout, and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus import load_corpus
from eval.runner import contains_answer
from eval.sets import EvalSetError, load_beir_set, load_question_set, set_documents
from tests.conftest import BUNDLED_CORPUS, PROJECT_ROOT

SEED_SET = PROJECT_ROOT / "eval" / "sets" / "seed-articles.jsonl"


def test_seed_set_loads_and_every_gold_answer_is_in_its_documents() -> None:
    questions = load_question_set(SEED_SET)
    assert len(questions) == 70
    assert sum(not q.answerable for q in questions) == 12
    texts = {d.id: d.text for d in load_corpus([BUNDLED_CORPUS])}
    for question in questions:
        for answer in question.answers:
            assert any(contains_answer(texts[doc_id], [answer]) for doc_id in question.doc_ids), question.id


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "a", "question": "", "answers": []}', "'question'"),
        ('{"id": "a", "question": "q?", "answers": "x"}', "'answers'"),
        ('{"question": "q?", "answers": []}', "'id'"),
        ("not json", "not valid JSON"),
    ],
)
def test_bad_question_lines_are_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(EvalSetError, match=message):
        load_question_set(path)


def test_duplicate_question_ids_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text('{"id": "a", "question": "q?", "answers": []}\n' * 2)
    with pytest.raises(EvalSetError, match="duplicate id 'a'"):
        load_question_set(path)


def write_beir(directory: Path) -> Path:
    (directory / "qrels").mkdir(parents=True)
    (directory / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "Cats", "text": "Cats purr."}\n{"_id": "d2", "title": "", "text": "Dogs bark."}\n'
    )
    (directory / "queries.jsonl").write_text(
        '{"_id": "1", "text": "do cats purr"}\n{"_id": "2", "text": "unjudged"}\n{"_id": "3", "text": "dogs"}\n'
    )
    (directory / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n1\td1\t1\n3\td2\t1\n3\td1\t0\n"
    )
    return directory


def test_beir_layout_keeps_judged_queries_and_positive_grades(tmp_path: Path) -> None:
    data = load_beir_set(write_beir(tmp_path / "tiny"), "train")
    assert data.queries == {"1": "do cats purr", "3": "dogs"}
    assert data.qrels == {"1": {"d1": 1}, "3": {"d2": 1}}
    assert [d.id for d in load_corpus([data.corpus_path])] == ["d1", "d2"]


def test_beir_missing_split_is_named(tmp_path: Path) -> None:
    with pytest.raises(EvalSetError, match=r"qrels/test\.tsv not found"):
        load_beir_set(write_beir(tmp_path / "tiny"), "test")


def test_a_set_is_asked_of_exactly_the_documents_it_lists(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "\n".join(f'{{"_id": "{i}", "title": "T{i}", "text": "Text number {i}."}}' for i in ("a", "b", "c")),
        "utf-8",
    )
    questions = tmp_path / "small.jsonl"
    questions.write_text('{"id": "q1", "question": "Which?", "answers": ["Text"]}\n', "utf-8")
    assert [d.id for d in set_documents(questions, corpus)] == ["a", "b", "c"]  # no listing: all
    (tmp_path / "small.corpus.txt").write_text("# sampled by hand\nc\na\n", "utf-8")
    assert sorted(d.id for d in set_documents(questions, corpus)) == ["a", "c"]
    (tmp_path / "small.corpus.txt").write_text("a\nmissing\n", "utf-8")
    with pytest.raises(EvalSetError, match="lacks documents small is written over: missing"):
        set_documents(questions, corpus)
