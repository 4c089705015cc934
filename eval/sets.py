"""Loading eval sets: the project's own question sets and BEIR-layout data sets.

A project set is JSON Lines, one question per line:
``{"id", "question", "answers": [exact substrings of the corpus], "doc_ids": [...], "kind"}``;
``"answers": []`` marks a question the corpus does not answer. Relevance is judged by text (a
passage is relevant when it contains a gold answer), so a set stays valid when chunking changes.

A set may be written over documents of a larger collection it does not ship (SciFact abstracts,
say): `<set>.corpus.txt` beside it lists their ids, and `rag eval SET --corpus PATH` reads them
from PATH. Without it, a set is asked of the configured index.

A BEIR data set is a directory with ``corpus.jsonl`` (read by the corpus loader, like any
``.jsonl`` corpus), ``queries.jsonl`` (``{"_id", "text"}``) and ``qrels/<split>.tsv`` (a header
line, then ``query-id  corpus-id  score``). Only queries that have judgements in the split are kept.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpus import Document, load_corpus


class EvalSetError(ValueError):
    """An eval set that cannot be read: missing file, malformed line or field."""


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: list[str]
    doc_ids: list[str] = field(default_factory=list)
    kind: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass(frozen=True)
class BeirSet:
    directory: Path
    split: str
    queries: dict[str, str]  # query id -> text, only queries judged in `split`
    qrels: dict[str, dict[str, int]]  # query id -> document id -> relevance grade

    @property
    def corpus_path(self) -> Path:
        return self.directory / "corpus.jsonl"


def load_question_set(path: Path) -> list[Question]:
    """The questions of a project set, in file order; ids must be unique."""
    questions: list[Question] = []
    seen: set[str] = set()
    for line_number, record in _json_lines(path):
        where = f"{path}:{line_number}"
        question_id, text = record.get("id"), record.get("question")
        answers, doc_ids = record.get("answers", []), record.get("doc_ids", [])
        if not isinstance(question_id, str) or not question_id:
            raise EvalSetError(f"{where}: 'id' must be a non-empty string")
        if not isinstance(text, str) or not text.strip():
            raise EvalSetError(f"{where}: 'question' must be a non-empty string")
        if not _is_string_list(answers) or any(not answer.strip() for answer in answers):
            raise EvalSetError(f"{where}: 'answers' must be a list of non-empty strings")
        if not _is_string_list(doc_ids):
            raise EvalSetError(f"{where}: 'doc_ids' must be a list of strings")
        if question_id in seen:
            raise EvalSetError(f"{where}: duplicate id {question_id!r}")
        seen.add(question_id)
        kind = record.get("kind", "")
        questions.append(Question(question_id, text.strip(), answers, doc_ids, str(kind)))
    if not questions:
        raise EvalSetError(f"{path}: no questions")
    return questions


def corpus_ids(path: Path) -> list[str] | None:
    """The document ids a set is written over, from `<set>.corpus.txt` beside it (one per line,
    `#` comments), or None when the set names no corpus of its own (it is asked of the index)."""
    listing = path.with_name(f"{path.stem}.corpus.txt")
    if not listing.is_file():
        return None
    lines = (line.strip() for line in listing.read_text("utf-8").splitlines())
    ids = [line for line in lines if line and not line.startswith("#")]
    if not ids:
        raise EvalSetError(f"{listing}: no document ids")
    return ids


def set_documents(path: Path, corpus: Path) -> list[Document]:
    """The documents the set at `path` is written over (its `corpus_ids`), read from `corpus`
    (every document of it when the set lists none)."""
    wanted = corpus_ids(path)
    documents = load_corpus([corpus])
    if wanted is None:
        return documents
    chosen = set(wanted)
    documents = [document for document in documents if document.id in chosen]
    if missing := sorted(chosen - {document.id for document in documents}):
        raise EvalSetError(f"{corpus} lacks documents {path.stem} is written over: {', '.join(missing[:5])}")
    return documents


def load_beir_set(directory: Path, split: str) -> BeirSet:
    """Queries and judgements of one split of a BEIR-layout directory (the corpus is read later)."""
    qrels_path = directory / "qrels" / f"{split}.tsv"
    for required in (directory / "corpus.jsonl", directory / "queries.jsonl", qrels_path):
        if not required.is_file():
            raise EvalSetError(
                f"{required} not found: expected BEIR layout (corpus.jsonl, queries.jsonl, qrels/{split}.tsv)"
            )
    qrels = _read_qrels(qrels_path)
    queries: dict[str, str] = {}
    for line_number, record in _json_lines(directory / "queries.jsonl"):
        query_id, text = record.get("_id", record.get("id")), record.get("text")
        if query_id is None or not isinstance(text, str):
            raise EvalSetError(f"{directory / 'queries.jsonl'}:{line_number}: needs '_id' and 'text'")
        if str(query_id) in qrels and text.strip():
            queries[str(query_id)] = text.strip()
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise EvalSetError(f"{qrels_path}: {len(missing)} judged queries have no text, e.g. {missing[0]!r}")
    return BeirSet(directory, split, queries, qrels)


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        for line_number, row in enumerate(rows, start=1):
            if line_number == 1 and row and row[0] == "query-id":
                continue
            if not row:
                continue
            if len(row) != 3:
                raise EvalSetError(f"{path}:{line_number}: expected 3 tab-separated columns")
            try:
                grade = int(row[2])
            except ValueError as error:
                raise EvalSetError(f"{path}:{line_number}: score {row[2]!r} is not an integer") from error
            if grade > 0:  # BEIR lists some zero grades; ranx counts only positive ones anyway
                qrels.setdefault(row[0], {})[row[1]] = grade
    if not qrels:
        raise EvalSetError(f"{path}: no positive judgements")
    return qrels


def _json_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise EvalSetError(f"cannot read {path}: {error}") from error
    records: list[tuple[int, dict[str, Any]]] = []
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise EvalSetError(f"{path}:{line_number}: not valid JSON: {error.msg}") from error
        if not isinstance(record, dict):
            raise EvalSetError(f"{path}:{line_number}: each line must be a JSON object")
        records.append((line_number, record))
    return records


def _is_string_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
