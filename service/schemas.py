"""Request and response schemas of the HTTP API: pydantic models only.

Kept apart from the index's domain objects (`service.results` converts between them), and free
of server code, so the Python client imports these without FastAPI, FAISS, torch or bm25s.
Defaults come from `index.search.options`, the one place each is written. The LLM tool formats have
their own schemas in `service.llm_schemas`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from index.search.filters import Filter
from index.search.modes import FusionMethod, Mode
from index.search.options import DEFAULT_DOCUMENT_K, DEFAULT_K, DEFAULT_MODE, MAX_CONTEXT
from service.filter_schema import QueryFilter, QuestionDates, SearchFilter

MODE_DESCRIPTION = (
    "`hybrid` fuses dense (embedding) and BM25 (keyword) rankings and is best overall; `dense` "
    "matches meaning only; `bm25` matches words only."
)


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable error code, e.g. `invalid_request`.")
    message: str = Field(description="What is wrong, in words a person or a model can act on.")
    details: list[dict[str, Any]] = Field(
        default_factory=list, description="Per-field problems, when the request failed validation."
    )
    request_id: str | None = Field(
        None,
        description="The request's id, as in its `X-Request-ID` response header and the server's log "
        "line (the client's own `X-Request-ID` when it sent a valid one).",
    )


class ErrorResponse(BaseModel):
    error: ErrorDetail = Field(description="The error.")


class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "failed"] = Field(
        description="`ok` when the index is loaded and queries work; `loading` while the server "
        "loads the model and the index, `failed` when that failed (`/readyz` says why): the "
        "process is up either way, and the index fields below are null."
    )
    index_version: str | None = Field(None, description="Version of the live index generation.")
    documents: int | None = Field(None, description="Number of documents indexed.")
    chunks: int | None = Field(None, description="Number of passages (chunks) indexed.")
    segments: int | None = Field(
        None, description="Number of index segments the live commit holds (merges lower it)."
    )
    segment_ceiling: int | None = Field(
        None,
        description="Segment count at which writers wait for merges before committing (back-pressure).",
    )


class ReadyResponse(BaseModel):
    status: Literal["ready"] = Field(description="`ready`: the model and the index are loaded.")
    index_version: str = Field(description="Version of the live index generation.")


class CollectionOut(BaseModel):
    name: str = Field(
        description="The collection's name; `default` is served by the routes without a prefix."
    )
    index_version: str = Field(description="Version of its live index generation.")
    documents: int = Field(description="Number of documents it holds.")
    chunks: int = Field(description="Number of passages (chunks) it holds.")


class UnavailableCollectionOut(BaseModel):
    name: str = Field(description="The collection's name.")
    problem: str = Field(description="Why its index cannot be loaded.")


class CollectionListResponse(BaseModel):
    collections: list[CollectionOut] = Field(description="The collections this key may use, `default` first.")
    unavailable: list[UnavailableCollectionOut] = Field(
        description="Collections this key may use whose index cannot be loaded, with the reason."
    )


class QueryRequest(BaseModel):
    # Strict: `"k": "3"` or `"k": true` is a client bug to report, not a value to guess at.
    model_config = ConfigDict(extra="forbid", strict=True)

    query: str = Field(
        description="The question, in natural language. Must not be empty; at most "
        "RAG_MAX_QUERY_CHARS characters (1000 by default).",
        examples=["what projects could Larijani's visit accelerate?"],
    )


class SearchOptions(QueryRequest):
    k: int = Field(
        DEFAULT_K, ge=1, description=f"How many passages to return: 1 to RAG_MAX_K; {DEFAULT_K} by default."
    )
    # Not strict: a JSON string is the only way to send an enum member.
    mode: Mode = Field(DEFAULT_MODE, strict=False, description=MODE_DESCRIPTION)
    context: int = Field(
        0,
        ge=0,
        le=MAX_CONTEXT,
        description=f"Widen each passage by this many neighbouring chunks of its document on each "
        f"side (0 to {MAX_CONTEXT}), merged into one exact span: `text` is still document text[start:end].",
    )


FILTER_DESCRIPTION = (
    "Answer only from the documents this filter matches (Qdrant's shape: `must`, `should`, "
    "`must_not` lists of conditions on `id`, `title`, `source`, `author`, `url`, `published` or "
    "`metadata.<key>`). The results are the best passages among the matching ones."
)


class SearchRequest(SearchOptions, QuestionDates):
    filter: SearchFilter | None = Field(
        None,
        description=FILTER_DESCRIPTION,
        examples=[{"must": [{"key": "source", "match": {"value": "Nournews"}}]}],
    )

    def search_filter(self) -> Filter | None:
        return None if self.filter is None else self.filter.to_filter()


class SearchParams(SearchOptions, QueryFilter, QuestionDates):
    """`GET /search`'s query string: the same fields (the question as `q`), read from text, so
    numbers are parsed; unknown parameters are refused as in the JSON body. The common filter
    conditions are parameters of their own (`QueryFilter`)."""

    model_config = ConfigDict(extra="forbid", strict=False, populate_by_name=False)

    query: str = Field(alias="q", description="The question, in natural language.")

    def search_filter(self) -> Filter | None:
        return self.query_filter()


class DocumentSearchRequest(QueryRequest, QuestionDates):
    k: int = Field(
        DEFAULT_DOCUMENT_K,
        ge=1,
        description=f"How many documents to return: 1 to RAG_MAX_K; {DEFAULT_DOCUMENT_K} by default.",
    )
    feedback: bool = Field(
        False,
        description="Rank again after moving the query vector towards the top document's closest "
        "passage (Rocchio feedback): slightly better on SciFact, about twice the work.",
    )
    filter: SearchFilter | None = Field(None, description=FILTER_DESCRIPTION.replace("passages", "documents"))

    def search_filter(self) -> Filter | None:
        return None if self.filter is None else self.filter.to_filter()


class DocumentMetadata(BaseModel):
    """What a citation names besides the document id."""

    title: str = Field(description="Document title (empty when unknown).")
    source: str = Field(description="Publication the document comes from (empty when unknown).")
    author: str = Field(description="Author, when one is named (else empty).")
    url: str = Field(description="Canonical URL, when known (else empty).")
    published: str = Field(description="Publication date, when known (else empty).")


class DocumentRef(DocumentMetadata):
    id: str = Field(description="Stable document id; `GET /documents/{id}` returns the full text.")


class AnswerOut(BaseModel):
    text: str = Field(description="The sentence of the passage that best answers the question.")
    start: int = Field(description="Character offset of the sentence in the document text (or field value).")
    end: int = Field(
        description="Character offset just past the sentence in the document text (or field value)."
    )
    field: str = Field(
        "text",
        description="`text`: the offsets are into the document's text. `author`, `source` or "
        "`published`: the question asks for that field of the document, and the answer is it, the "
        "offsets into its value (`GET /documents/{id}` returns it).",
    )


class ExplainOut(BaseModel):
    dense_rank: int | None = Field(
        description="Rank among dense (embedding) candidates; null if not among them."
    )
    dense_score: float = Field(description="Cosine similarity between the question and the passage.")
    bm25_rank: int | None = Field(description="Rank among BM25 candidates; null if not among them.")
    bm25_score: float | None = Field(description="BM25 score; null if not a BM25 candidate.")
    matched_terms: list[str] = Field(description="Question words (stemmed match) found in the passage.")
    fused_score: float | None = Field(description="Fused hybrid score; null outside hybrid mode.")
    fusion: FusionMethod | None = Field(description="Fusion method used in hybrid mode (`rrf` or `convex`).")


class PassageOut(BaseModel):
    chunk_id: str = Field(description="Stable passage id: `<document id>#<start>-<end>`.")
    text: str = Field(description="The passage; equals document text[start:end].")
    start: int = Field(description="Character offset of the passage in the document text.")
    end: int = Field(description="Character offset just past the passage in the document text.")


class SearchResultItem(PassageOut):
    rank: int = Field(description="1-based rank.")
    score: float = Field(description="Ranking score in the requested mode (higher is better).")
    document: DocumentRef = Field(description="The document the passage comes from, for citation.")
    answer: AnswerOut = Field(description="The answer sentence inside the passage, with offsets.")
    explain: ExplainOut = Field(description="Where the score came from.")


class AppliedFilters(BaseModel):
    """What a search kept to, besides its question."""

    filter: dict[str, Any] | None = Field(
        None, description="The request's filter, as applied, in its JSON form; null when none."
    )
    filter_from_question: dict[str, Any] | None = Field(
        None,
        description="The publication-date range the question itself states, applied as well (a "
        "`published` range condition, with the question's words it came from: `phrase`, `start`, "
        "`end`); null when none was read (or `dates_from_question` was false).",
    )


class SearchResponse(AppliedFilters):
    query: str = Field(description="The question as received.")
    mode: Mode = Field(description="The retrieval mode used.")
    index_version: str = Field(description="Index generation that answered; cite it with the offsets.")
    answerable: bool = Field(
        description="False when no passage is a confident match: the corpus likely does not answer "
        "the question. Results are listed either way."
    )
    confidence: float = Field(
        description="Probability (0 to 1) that the top passages answer the question, from a model "
        "calibrated on question sets with known answers; `answerable` is `confidence >= "
        "RAG_ANSWERABLE_THRESHOLD` (0.35 by default)."
    )
    results: list[SearchResultItem] = Field(description="Passages, best first.")


class DocumentResultItem(BaseModel):
    rank: int = Field(description="1-based rank.")
    score: float = Field(description="Fused document score (higher is better).")
    document: DocumentRef = Field(description="The document, for citation.")
    passage: PassageOut = Field(
        description="The document's best passage for the query, as `/search` ranks them."
    )
    answer: AnswerOut = Field(description="The answer sentence inside that passage, with offsets.")


class DocumentSearchResponse(AppliedFilters):
    query: str = Field(description="The question as received.")
    index_version: str = Field(description="Index generation that answered.")
    feedback: bool = Field(description="Whether Rocchio feedback was applied.")
    results: list[DocumentResultItem] = Field(description="Documents, best first.")


class DocumentSummary(DocumentRef):
    characters: int = Field(description="Length of the document text in characters.")


class DocumentListResponse(BaseModel):
    index_version: str = Field(description="Index generation listed.")
    documents: list[DocumentSummary] = Field(description="All documents, sorted by id.")


class DocumentResponse(DocumentRef):
    index_version: str = Field(description="Index generation the text comes from.")
    text: str = Field(description="The canonical text; all offsets point into it.")
    metadata: dict[str, Any] = Field(description="Any further metadata the document came with.")


WriteStatus = Literal["added", "replaced", "unchanged", "removed"]


class DocumentWriteResponse(BaseModel):
    status: WriteStatus = Field(
        description="What the request did; `unchanged` when the same content was already indexed."
    )
    document_id: str = Field(description="Id of the document written or removed.")
    index_version: str = Field(
        description="Index generation that holds the change, live and on disk when this is sent."
    )
    documents: int = Field(description="Number of documents in that generation.")
    chunks: int = Field(description="Number of passages in that generation.")


class SnapshotRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="1-64 letters, digits, `_`, `-`, `.`, starting with a letter or digit.",
    )


class SnapshotOut(BaseModel):
    name: str = Field(description="The snapshot's name.")
    index_version: str = Field(description="The index version the snapshot keeps.")
    documents: int = Field(description="Documents in that version.")
    created_at: str = Field(description="When that version was committed (UTC, ISO 8601).")


class DamagedSnapshotOut(BaseModel):
    name: str = Field(description="The snapshot's name.")
    problem: str = Field(description="What is wrong with it (the damaged file named).")


class SnapshotListResponse(BaseModel):
    snapshots: list[SnapshotOut] = Field(description="Every snapshot whose commit point reads back, by name.")
    damaged: list[DamagedSnapshotOut] = Field(
        default_factory=list, description="Snapshots whose commit point is damaged: they cannot be restored."
    )


class RestoreResponse(BaseModel):
    restored: SnapshotOut = Field(description="The snapshot made live again.")
    index_version: str = Field(
        description="The new live index version (a later one: versions never go back)."
    )


class UnreadableSegment(BaseModel):
    segment: str = Field(description="A segment of the damaged commit whose document ids cannot be read.")
    documents: int = Field(description="How many documents the damaged commit says it held.")


class RecoverResponse(BaseModel):
    recovered: bool = Field(
        description="Whether the live commit was damaged and replaced; false: it is intact, nothing changed."
    )
    index_version: str = Field(description="The live index version now (a later one after a recovery).")
    source: str = Field(
        description="The commit point the live index comes from: `commits/<generation>.json` or "
        "`snapshots/<name>/commit.json` under the index directory. Served sharded: each shard's, "
        "as `shard-<i>/...`, joined by `, `."
    )
    damage: str | None = Field(description="What was wrong with the live commit; null when intact.")
    lost_documents: list[str] = Field(
        description="Ids of documents the damaged commit held that the recovered one does not."
    )
    returned_documents: list[str] = Field(
        description="Ids of documents the recovered commit holds that the damaged one had deleted "
        "(or replaced by a version in an unreadable segment)."
    )
    unreadable_segments: list[UnreadableSegment] = Field(
        description="Segments of the damaged commit whose document ids cannot be read: their documents are lost."
    )
    live_commit_unknown: bool = Field(
        description="True when which commit was live cannot be read (CURRENT is damaged or missing), "
        "so what it held is unknown."
    )


class OptimizeResponse(BaseModel):
    index_version: str = Field(description="The live index version after the merge.")
    segments: int = Field(description="Segments the live commit holds now.")
    merged: int = Field(description="Segments merged by this request (0: nothing to do).")
