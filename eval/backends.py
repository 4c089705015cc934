"""Where an evaluation gets its rankings: the index in this process, or a running service.

Both backends turn a list of questions into, per question, the ranked passages (id, document,
text, score, answer sentence) plus the `answerable` flag and confidence, for one retrieval mode.
In-process, all questions are embedded in one batch by what the service encodes them with (`rag
eval` passes `service.engine.question_encoder_for`) and the same `Retriever` that answers `/search`
ranks them; over HTTP each question is one `POST /search` (httpx) to a deployed service.

`document_rankings` is the ranking-only path for BEIR-style judgements: passages aggregated to
documents, a document ranked by its best passage. Two more modes exist only there, in-process
(the service ranks passages, not documents):

* ``hybrid-doc``: document-level fusion (`index.search.document_ranking`);
* ``hybrid-doc-prf``: the same with one round of Rocchio feedback (weight `feedback_weight`).

Over HTTP these two modes are `POST /search/documents` (with ``feedback`` for the second).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx
from tqdm import tqdm

from index.embedding import Embedder
from index.search.document_ranking import rank_documents
from index.search.modes import Mode
from index.search.retrieval import Retriever, SearchOutcome

DocumentFusionMode = Literal["hybrid-doc", "hybrid-doc-prf"]
DocumentMode = Mode | DocumentFusionMode  # what `document_rankings` accepts
DOCUMENT_FUSION_MODES: tuple[DocumentFusionMode, ...] = ("hybrid-doc", "hybrid-doc-prf")
DOCUMENT_MODES: tuple[DocumentMode, ...] = (*Mode, *DOCUMENT_FUSION_MODES)


class BackendError(RuntimeError):
    """The service under evaluation failed or answered something unexpected."""


@dataclass(frozen=True)
class Passage:
    chunk_id: str
    document_id: str
    text: str
    score: float
    answer: str


@dataclass(frozen=True)
class Answer:
    passages: list[Passage]
    answerable: bool
    confidence: float


@dataclass(frozen=True)
class RankedDocuments:
    ids: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


class Backend(Protocol):
    def answer(self, questions: Sequence[str], mode: Mode, k: int, progress: bool) -> list[Answer]: ...

    def document_rankings(
        self, questions: Sequence[str], mode: DocumentMode, depth: int, progress: bool
    ) -> list[RankedDocuments]: ...


class InProcessBackend:
    """The retriever in this process; question vectors are computed once and shared by all modes,
    by `questions` (what the service encodes questions with; default: the retriever's embedder)."""

    def __init__(self, retriever: Retriever, questions: Embedder | None = None) -> None:
        self.retriever = retriever
        self.questions = questions or retriever.embedder
        self._vectors: dict[str, Any] = {}

    def _vectors_for(self, questions: Sequence[str]) -> list[Any]:
        missing = [q for q in dict.fromkeys(questions) if q not in self._vectors]
        batch = 256
        for begin in range(0, len(missing), batch):
            part = missing[begin : begin + batch]
            for question, vector in zip(part, self.questions.embed_batch(part), strict=True):
                self._vectors[question] = vector
        return [self._vectors[q] for q in questions]

    def answer(self, questions: Sequence[str], mode: Mode, k: int, progress: bool) -> list[Answer]:
        vectors = self._vectors_for(questions)
        pairs = _progress(zip(questions, vectors, strict=True), len(questions), f"{mode:>8}", progress)
        return [_answer_of(self.retriever.search(q, k, mode, query_vector=v)) for q, v in pairs]

    def document_rankings(
        self, questions: Sequence[str], mode: DocumentMode, depth: int, progress: bool
    ) -> list[RankedDocuments]:
        vectors = self._vectors_for(questions)
        document_of = self.retriever.reader.document_id_of
        limit = max(self.retriever.options.document_candidates, depth)
        rankings: list[RankedDocuments] = []
        for question, vector in _progress(
            zip(questions, vectors, strict=True), len(questions), f"{mode:>8}", progress
        ):
            if mode == "hybrid-doc" or mode == "hybrid-doc-prf":
                fused = rank_documents(
                    self.retriever, question, vector, limit, feedback=mode == "hybrid-doc-prf"
                )
                rankings.append(
                    RankedDocuments([d.document_id for d in fused[:depth]], [d.score for d in fused[:depth]])
                )
                continue
            ordered = self.retriever.rank(question, Mode(mode), limit, query_vector=vector)
            rankings.append(best_passage_per_document(((document_of(r), s) for r, s in ordered), depth))
        return rankings


class HttpBackend:
    """A running service, e.g. `HttpBackend("http://127.0.0.1:9000")`."""

    def __init__(self, base_url: str, timeout: float = 60.0, client: httpx.Client | None = None) -> None:
        self.client = client or httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        question = body["query"]
        try:
            response = self.client.post(path, json=body)
        except httpx.HTTPError as error:
            raise BackendError(f"cannot reach the service: {error}") from error
        if response.status_code != 200:
            raise BackendError(
                f"service answered {response.status_code} for {question!r}: {response.text[:300]}"
            )
        answer: dict[str, Any] = response.json()
        return answer

    def answer(self, questions: Sequence[str], mode: Mode, k: int, progress: bool) -> list[Answer]:
        answers: list[Answer] = []
        for question in _progress(questions, len(questions), f"{mode:>8}", progress):
            body = self._post("/search", {"query": question, "k": k, "mode": mode})
            try:
                passages = [
                    Passage(
                        r["chunk_id"], r["document"]["id"], r["text"], float(r["score"]), r["answer"]["text"]
                    )
                    for r in body["results"]
                ]
                answers.append(Answer(passages, bool(body["answerable"]), float(body["confidence"])))
            except (KeyError, TypeError, ValueError) as error:
                raise BackendError(f"unexpected /search response: missing or bad {error}") from error
        return answers

    def document_rankings(
        self, questions: Sequence[str], mode: DocumentMode, depth: int, progress: bool
    ) -> list[RankedDocuments]:
        if mode == "hybrid-doc" or mode == "hybrid-doc-prf":
            return [
                self._ranked_documents(question, depth, feedback=mode == "hybrid-doc-prf")
                for question in _progress(questions, len(questions), f"{mode:>8}", progress)
            ]
        # The service returns de-duplicated passages; the first of a document is its best one.
        return [
            best_passage_per_document(((p.document_id, p.score) for p in answer.passages), depth)
            for answer in self.answer(questions, mode, depth, progress)
        ]

    def _ranked_documents(self, question: str, depth: int, feedback: bool) -> RankedDocuments:
        body = self._post("/search/documents", {"query": question, "k": depth, "feedback": feedback})
        try:
            return RankedDocuments(
                [r["document"]["id"] for r in body["results"]], [float(r["score"]) for r in body["results"]]
            )
        except (KeyError, TypeError, ValueError) as error:
            raise BackendError(f"unexpected /search/documents response: missing or bad {error}") from error


def best_passage_per_document(ranked: Iterable[tuple[str, float]], depth: int) -> RankedDocuments:
    """Documents in the order of their best passage (`ranked` is best first), at most `depth`."""
    documents = RankedDocuments()
    seen: set[str] = set()
    for document_id, score in ranked:
        if document_id not in seen:
            seen.add(document_id)
            documents.ids.append(document_id)
            documents.scores.append(float(score))
            if len(documents.ids) == depth:
                break
    return documents


def _answer_of(outcome: SearchOutcome) -> Answer:
    passages = [
        Passage(hit.chunk.id, hit.document.id, hit.chunk.text, hit.score, hit.answer.text)
        for hit in outcome.hits
    ]
    return Answer(passages, outcome.answerable, outcome.confidence)


def _progress(items: Iterable[Any], total: int, label: str, enabled: bool) -> Iterable[Any]:
    return tqdm(items, total=total, desc=label, unit="q", disable=not enabled, leave=False)
