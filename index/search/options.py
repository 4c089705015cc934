"""Retrieval defaults, each written once: the service's settings, the CLI, MCP, the HTTP client,
eval and the benchmark all take them from here.

`RetrievalOptions` holds how a query is answered (candidate depth, fusion, answer sentences,
near-duplicates, `answerable`, document ranking); the values are the ones measured best with
`make eval` (docs/decisions.md). The constants are the defaults of a request. How the index is
built (chunking, BM25 parameters, vector index) has its own dataclasses next to the code that
uses them: `index.write.building.IndexSettings`, `index.text.chunking.ChunkerSettings`,
`index.storage.vectors.VectorIndexSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass

from index.search.modes import FusionMethod, Mode

DEFAULT_MODE = Mode.HYBRID
DEFAULT_K = 5  # passages per search
DEFAULT_DOCUMENT_K = 10  # documents per document search
MAX_CONTEXT = 3  # neighbouring chunks a hit may be widened by, on each side


@dataclass(frozen=True)
class RetrievalOptions:
    candidates: int = 100  # passages each signal contributes to a search (at least 4k)
    # BM25, applied at query time (the index stores term frequencies and lengths, not scores).
    # Pyserini's BEIR setting; in hybrid mode slightly ahead of bm25s' 1.2 / 0.75 on both eval sets.
    bm25_k1: float = 0.9
    bm25_b: float = 0.4
    fusion: FusionMethod = FusionMethod.CONVEX
    rrf_k: float = 60.0  # reciprocal rank fusion's damping constant
    dense_weight: float = 0.7  # dense share of the convex combination
    # A candidate sharing no term with the question is related only from this cosine up: below
    # it, it cannot set the bottom of the dense scale (`index.search.fusion`).
    related_cosine: float = 0.2
    sentence_weight: float = 0.7  # share of a passage's dense score taken from its best sentence
    # The probability (`index.search.answerability`) below which `answerable` is false: on the fitted sets,
    # between flagging the first answerable question (0.4) and the last off-topic one (0.3).
    answerable_threshold: float = 0.35
    answer_term_weight: float = 0.3  # answer sentence: weight of the query terms it covers
    answer_type_weight: float = 0.15  # answer sentence: bonus for holding the expected answer type
    duplicate_overlap: float = 0.5  # same-document chunks sharing more of the shorter are duplicates
    duplicate_jaccard: float = 0.85  # chunks whose word sets overlap this much are duplicates
    document_candidates: int = 300  # passages per signal when ranking documents
    feedback_weight: float = 0.3  # Rocchio beta of document search with feedback

    def candidates_for(self, k: int) -> int:
        """Candidates per signal a search for `k` passages takes: `candidates`, and at least 4k."""
        return max(self.candidates, 4 * k)

    def document_candidates_for(self, k: int) -> int:
        """Passages per signal a search for `k` documents takes (`index.search.document_ranking`)."""
        return max(self.document_candidates, k)
