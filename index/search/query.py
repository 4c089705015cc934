"""One search's question as every stage reads it, each part computed once per search.

Several stages read the same things about a question: BM25 its terms and their collection
statistics (N, df, avgdl over the live chunks); answer sentences and answerability the terms' idf
and the answer type the question expects; explanations the question's words that a passage holds;
and the dense signal, answer sentences, explanations, answerability and document ranking the
cosines between the question and the same passages and sentences. A `Query` holds them: the
analysis and the statistics are made on first use, and cosines are kept per passage row and per
sentence row, so a stage asking for rows another stage already scored reads them instead of
computing them again.

A query may carry a filter (`index.search.filters`); `allowed` then marks the chunks it may
answer from, and the candidate stages search only those.

Invariants: `terms` is ``analysis.terms(text)`` (in text order, repeats kept: BM25 counts a term
asked twice twice); `term_weights` maps each distinct term to its idf under `statistics`; a cosine
is ``dot(vector, v)`` in float32 (the stored vectors' precision), read back as a float, whichever
stage asked first.

A `Query` belongs to one reader (one commit) and one search, used from one thread. Out of scope:
what the stages do with it (`index.search.retrieval` wires them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from index.embedding import Vectors
from index.search.answer_types import ExpectedAnswer, expected_answer
from index.search.filters import Filter
from index.search.passage_index import PassageIndex
from index.search.question_dates import QuestionDates
from index.storage.fields import Mask
from index.storage.postings import CollectionStatistics
from index.text.analysis import matched_terms, term_set, terms
from index.text.metadata import asked_field

Cosines = npt.NDArray[np.float64]
CosinesOf = Callable[[Vectors, Sequence[int]], npt.NDArray[np.float32]]  # the reader's, by row


def searched_filter(requested: Filter | None, dates: QuestionDates | None) -> Filter | None:
    """What a search keeps to: the request's filter (None or empty: everything) and the
    question's own dates."""
    requested = None if requested is None or requested.is_empty else requested
    if dates is None:
        return requested
    return Filter(must=(dates.condition,)).and_(requested)


class Query:
    def __init__(
        self,
        reader: PassageIndex,
        text: str,
        vector: Vectors,
        filter: Filter | None = None,
        dates: QuestionDates | None = None,
    ) -> None:
        """`filter`: the request's; `dates`: the question's own dates (`index.search.question_dates`),
        searched within too."""
        self.reader = reader
        self.text = text
        self.vector = np.ascontiguousarray(vector.reshape(-1), dtype=np.float32)  # unit length
        self.requested_filter = None if filter is None or filter.is_empty else filter
        self.dates = dates
        self.filter = searched_filter(self.requested_filter, dates)
        # The chunks a search may answer from (`IndexReader.allowed`); None: every live chunk.
        self.allowed: Mask | None = None if self.filter is None else reader.allowed(self.filter)
        self._passage_cosines: dict[int, float] = {}
        self._sentence_cosines: dict[int, float] = {}

    def with_vector(self, vector: Vectors) -> Query:
        """The same question and filters with another vector (feedback moves it), cosines of its own."""
        return Query(self.reader, self.text, vector, self.requested_filter, self.dates)

    # --- the text --------------------------------------------------------------------------

    @functools.cached_property
    def terms(self) -> list[str]:
        return terms(self.text)

    @functools.cached_property
    def statistics(self) -> CollectionStatistics:
        return self.reader.statistics(self.terms)

    @functools.cached_property
    def term_weights(self) -> dict[str, float]:
        """idf of each distinct term over the live chunks (`index.storage.postings`)."""
        return {term: self.statistics.idf(term) for term in self.terms}

    @functools.cached_property
    def expected(self) -> ExpectedAnswer | None:
        """The type of answer the question asks for (`index.search.answer_types`)."""
        return expected_answer(self.text)

    @functools.cached_property
    def asked_field(self) -> str | None:
        """The metadata field the question asks for (`index.text.metadata`), if any."""
        return asked_field(self.text)

    def coverage(self, text: str) -> float:
        """The idf-weighted share of the question's terms that `text` holds,
        ``sum(idf of q's terms in text) / sum(idf of q's terms)``; 0 for a question without terms."""
        total = self._total_weight
        if not total:
            return 0.0
        present = term_set(text)
        return sum(weight for term, weight in self.term_weights.items() if term in present) / total

    @functools.cached_property
    def _total_weight(self) -> float:
        return sum(self.term_weights.values())

    def matched_terms(self, text: str) -> list[str]:
        """The question's words whose term `text` holds (`index.text.analysis.matched_terms`)."""
        return matched_terms(self.text, text)

    # --- cosines ---------------------------------------------------------------------------

    def passage_cosines(self, rows: Sequence[int]) -> Cosines:
        """``cos(q, p)`` of each passage row in `rows`, computed only for rows not seen before."""
        return self._cosines(self._passage_cosines, rows, self.reader.passage_cosines)

    def sentence_cosines(self, rows: Sequence[int]) -> Cosines:
        """``cos(q, t)`` of each global sentence row in `rows`, computed only for rows not seen
        before."""
        return self._cosines(self._sentence_cosines, rows, self.reader.sentence_cosines)

    def keep_passage_cosines(self, rows: Sequence[int], cosines: npt.NDArray[np.floating]) -> None:
        """Remember cosines a stage computed itself (in bulk, from the stored vectors)."""
        self._passage_cosines.update(zip(rows, cosines.tolist(), strict=True))

    def keep_sentence_cosines(self, rows: Sequence[int], cosines: npt.NDArray[np.floating]) -> None:
        self._sentence_cosines.update(zip(rows, cosines.tolist(), strict=True))

    def _cosines(self, known: dict[int, float], rows: Sequence[int], cosines_of: CosinesOf) -> Cosines:
        missing = list(dict.fromkeys(row for row in rows if row not in known))
        if missing:
            known.update(zip(missing, cosines_of(self.vector, missing).tolist(), strict=True))
        return np.array([known[row] for row in rows], dtype=np.float64)
