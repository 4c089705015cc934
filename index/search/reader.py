"""A reader over one commit point: its live segments, their deleted documents left out, queried
as one index.

Rows are global: the chunks of the commit's segments one after another, in commit order (a
deleted document's chunks keep their rows but never come out of a search). Dense candidates
come from one scan of every exact segment's vectors into one array of cosines (`ExactScan`) and
from each approximate segment's IVF search, merged; BM25 scores every live chunk with statistics
summed over all live segments (`index.storage.postings`), consecutive small segments in one pass
(`blocks`), so a commit's results equal those of one segment holding the same documents and a
query pays little per segment. A reader never changes: a later commit gets a new reader, opened
with this one as `previous` (Lucene's openIfChanged), which re-uses the views (`SegmentView`: a
segment, its deleted documents and its postings) of the segments both list with the same
deletes file, so opening it costs the size of the change.

Opening checks what it builds on: CURRENT and the commit point against their checksums
(`index.storage.store`), every segment and deletes file it has not opened before against theirs, and
each segment's counts in the commit point against the segment's own, so a damaged commit point
is an error (`DamagedIndexError`), never a smaller index a writer would then build on. Out of
scope: ranking (`index.search.retrieval` and the stages it wires), writing (`index.write.writer`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from corpus import Document
from index.embedding import Vectors
from index.errors import DamagedIndexError, IndexCorruptError, IndexNotFoundError
from index.search.filters import Filter, IsEmpty
from index.search.parallel import run_all
from index.search.passage_index import PassageCosines, Sentence, SentenceCosines
from index.search.selection import Best, ExactScan, blocks, top
from index.settings import IndexSettings
from index.storage.arrays import ranges
from index.storage.commits import CommitPoint
from index.storage.fields import Mask
from index.storage.postings import CollectionStatistics, SegmentPostings, positive_top, score
from index.storage.segments import IvfSearch, IvfVectors, Segment
from index.storage.store import IndexStore
from index.storage.vectors import ivf_probes_in_segment
from index.text.chunking import Chunk

LOAD_ATTEMPTS = 5  # a reader racing a writer's clean-up retries on the newer commit
# BM25 scores consecutive segments together up to this many chunks (`index.storage.postings.score`).
SCORING_BLOCK_CHUNKS = 65_536
RECENT_FILTERS = 32  # filters whose allowed chunks a reader keeps (`IndexReader.allowed`)
Found = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]  # rows and cosines, in no order


@dataclass(frozen=True)
class SegmentView:
    """A segment as one commit lists it (with its deletes file): the deleted documents and their
    chunks, and the postings a query reads (which know the live chunks). The reader of a later
    commit that lists the segment with the same deletes file re-uses it (`IndexReader.open`)."""

    segment: Segment
    deleted: frozenset[int]
    deleted_chunks: npt.NDArray[np.int64]  # the chunk rows of the deleted documents
    postings: SegmentPostings  # which knows the live chunks

    @classmethod
    def of(cls, segment: Segment, deleted_rows: npt.NDArray[np.int64]) -> SegmentView:
        live = ~np.isin(np.asarray(segment.chunks[:, 0]), deleted_rows) if len(deleted_rows) else None
        return cls(
            segment,
            frozenset(deleted_rows.tolist()),
            np.zeros(0, dtype=np.int64) if live is None else np.flatnonzero(~live).astype(np.int64),
            SegmentPostings(segment.postings, live),
        )


class IndexReader:
    def __init__(self, commit: CommitPoint, views: Sequence[SegmentView]) -> None:
        self.commit = commit
        self.views = tuple(views)  # one per commit.segments entry, for the next reader to re-use
        self.segments = [view.segment for view in views]
        self.deleted_documents = [view.deleted for view in views]
        self.postings = [view.postings for view in views]
        counts = [segment.chunk_count for segment in self.segments]
        self.bases = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        sentence_counts = [len(segment.sentence_spans) for segment in self.segments]
        self.sentence_bases = np.concatenate([[0], np.cumsum(sentence_counts)]).astype(np.int64)
        self.exact_scan = ExactScan.of(self.segments, [view.deleted_chunks for view in views], self.bases)
        self.approximate = [
            (int(self.bases[index]), _ivf_search(view, alone=len(views) == 1))
            for index, view in enumerate(views)
            if isinstance(view.segment.vectors, IvfVectors)
        ]
        self.scoring_blocks = blocks(counts, SCORING_BLOCK_CHUNKS)
        # An index with approximate segments is large enough that its FAISS searches, and its
        # dense and BM25 searches, pay for other threads' hand-offs (`index.search.parallel`).
        self.searches_in_parallel = bool(self.approximate)
        self._allowed = functools.lru_cache(maxsize=RECENT_FILTERS)(self._allowed_chunks)

    @classmethod
    def open(cls, store: IndexStore, previous: IndexReader | None = None) -> IndexReader:
        """The live commit, opened, re-using what `previous` (an earlier reader of the same
        index) shares with it. If a writer in another process moves CURRENT and cleans up while
        this reads, the read is retried on the new commit, so only real damage raises."""
        for attempt in range(LOAD_ATTEMPTS):
            pointer = store.current_pointer()
            if pointer is None:
                raise IndexNotFoundError(f"no index in {store.root}: run `rag build` first")
            try:
                commit = store.read_commit(pointer.name, pointer.sha256)
                views = _views_of(store, commit, previous)
            except IndexCorruptError as error:
                if attempt + 1 < LOAD_ATTEMPTS and store.current_pointer() != pointer:
                    continue
                raise (
                    error if isinstance(error, DamagedIndexError) else DamagedIndexError(store.root, error)
                ) from error
            store.forget_segments_except({entry.name for entry in commit.segments})
            return cls(commit, views)
        raise IndexCorruptError(
            f"the index in {store.root} kept changing while being read"
        )  # pragma: no cover

    # --- the commit -------------------------------------------------------------------------

    @property
    def version(self) -> str:
        return self.commit.version

    @property
    def settings(self) -> IndexSettings:
        return self.commit.settings

    @property
    def model_name(self) -> str:
        return self.commit.model_name

    @property
    def dimension(self) -> int:
        return self.commit.dimension

    @functools.cached_property
    def document_count(self) -> int:
        return self.commit.documents

    @functools.cached_property
    def has_dates(self) -> bool:
        """Whether some live document has a publication date."""
        return bool(self.allowed(Filter(must_not=(IsEmpty("published"),))).any())

    @functools.cached_property
    def chunk_count(self) -> int:
        return sum(postings.chunks for postings in self.postings)

    # --- documents ---------------------------------------------------------------------------

    def location(self, document_id: str) -> tuple[int, int] | None:
        """(segment index, row) of the live document `document_id`, if there is one."""
        for index in range(len(self.segments) - 1, -1, -1):
            row = self.segments[index].row_of.get(document_id)
            if row is not None and row not in self.deleted_documents[index]:
                return index, row
        return None

    def document(self, document_id: str) -> Document | None:
        found = self.location(document_id)
        return None if found is None else self.segments[found[0]].document(found[1])

    def documents(self) -> Iterator[Document]:
        """Every live document, segment by segment."""
        for segment, deleted in zip(self.segments, self.deleted_documents, strict=True):
            for row in range(segment.document_count):
                if row not in deleted:
                    yield segment.document(row)

    def document_ids(self) -> list[str]:
        return [
            document_id
            for segment, deleted in zip(self.segments, self.deleted_documents, strict=True)
            for row, document_id in enumerate(segment.ids)
            if row not in deleted
        ]

    # --- chunks and sentences ---------------------------------------------------------------

    def locate(self, row: int) -> tuple[Segment, int]:
        index = self.segment_index(row)
        return self.segments[index], row - int(self.bases[index])

    def segment_index(self, row: int) -> int:
        return int(np.searchsorted(self.bases, row, side="right")) - 1

    def by_segment(
        self, rows: Sequence[int]
    ) -> Iterator[tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
        """(segment index, positions in `rows`, local rows) for each segment some of `rows` are in."""
        array = np.asarray(rows, dtype=np.int64)
        indices = np.searchsorted(self.bases, array, side="right") - 1
        for index in np.unique(indices).tolist():
            positions = np.flatnonzero(indices == index)
            yield index, positions, array[positions] - self.bases[index]

    def chunk(self, row: int) -> Chunk:
        segment, local = self.locate(row)
        return segment.chunk(local)

    def document_id_of(self, row: int) -> str:
        segment, local = self.locate(row)
        return segment.ids[int(segment.chunks[local, 0])]

    def chunk_vectors(self, rows: Sequence[int]) -> Vectors:
        vectors = np.zeros((len(rows), self.dimension), dtype=np.float32)
        for index, positions, local in self.by_segment(rows):
            vectors[positions] = self.segments[index].chunk_vectors(local)
        return vectors

    def sentences(self, row: int) -> list[Sentence]:
        index = self.segment_index(row)
        segment, local = self.segments[index], row - int(self.bases[index])
        base = int(self.sentence_bases[index])
        first, last = int(segment.sentence_ptr[local]), int(segment.sentence_ptr[local + 1])
        return [
            Sentence(base + i, start, end, bool(question))
            for i, (start, end), question in zip(
                range(first, last),
                segment.sentence_spans[first:last].tolist(),
                segment.sentence_questions[first:last].tolist(),
                strict=True,
            )
        ]

    def sentence_vectors(self, rows: Sequence[int]) -> Vectors:
        array = np.asarray(rows, dtype=np.int64)
        indices = np.searchsorted(self.sentence_bases, array, side="right") - 1
        vectors = np.zeros((len(array), self.dimension), dtype=np.float32)
        for index in np.unique(indices).tolist():
            positions = np.flatnonzero(indices == index)
            vectors[positions] = self.segments[index].sentence_vectors[
                array[positions] - self.sentence_bases[index]
            ]
        return vectors

    def sentence_spans(self, rows: Sequence[int] | npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """(start, end) in its document's text of each global sentence row, shape (len(rows), 2)."""
        array = np.asarray(rows, dtype=np.int64)
        indices = np.searchsorted(self.sentence_bases, array, side="right") - 1
        spans = np.zeros((len(array), 2), dtype=np.int64)
        for index in np.unique(indices).tolist():
            positions = np.flatnonzero(indices == index)
            spans[positions] = self.segments[index].sentence_spans[
                array[positions] - self.sentence_bases[index]
            ]
        return spans

    def passage_cosines(self, vector: Vectors, rows: Sequence[int]) -> npt.NDArray[np.float32]:
        cosines: npt.NDArray[np.float32] = self.chunk_vectors(rows) @ vector
        return cosines

    def sentence_cosines(self, vector: Vectors, rows: Sequence[int]) -> npt.NDArray[np.float32]:
        cosines: npt.NDArray[np.float32] = self.sentence_vectors(rows) @ vector
        return cosines

    def scored_passages(
        self, vector: Vectors, rows: Sequence[int], with_sentences: bool
    ) -> Iterator[PassageCosines]:
        """Segment by segment, the rows of `rows` it holds (their positions in `rows`), their
        cosines with `vector` and, with `with_sentences` and when the segment stores them, their
        sentences'."""
        for index, positions, local in self.by_segment(rows):
            segment = self.segments[index]
            sentences = None
            if with_sentences and len(segment.sentence_spans):
                starts, ends = segment.sentence_ptr[local], segment.sentence_ptr[local + 1]
                sentence_rows = ranges(starts, ends)
                sentences = SentenceCosines(
                    (ends - starts).astype(np.int64),
                    sentence_rows + self.sentence_bases[index],
                    segment.sentence_vectors[sentence_rows] @ vector,
                    segment.sentence_questions[sentence_rows].astype(bool),
                )
            yield PassageCosines(positions, segment.chunk_vectors(local) @ vector, sentences)

    def chunk_window(self, row: int, n: int) -> tuple[int, int]:
        """(start, end) of the union of chunk `row` and up to `n` chunks of its document on each side."""
        segment, local = self.locate(row)
        document_row = int(segment.chunks[local, 0])
        first, last = int(segment.chunk_ptr[document_row]), int(segment.chunk_ptr[document_row + 1])
        window = segment.chunks[max(first, local - n) : min(last, local + n + 1)]
        return int(window[:, 1].min()), int(window[:, 2].max())

    # --- search --------------------------------------------------------------------------------

    def allowed(self, filter: Filter) -> Mask:
        """Which chunks (by global row) are live and in a document `filter` matches. Kept for
        the last few filters: a page or a client tends to send the same one again."""
        return self._allowed(filter)

    def _allowed_chunks(self, filter: Filter) -> Mask:
        parts = [np.zeros(0, dtype=bool)]
        for view in self.views:
            documents = filter.documents(view.segment.fields)
            if view.deleted:
                documents[np.fromiter(view.deleted, dtype=np.int64)] = False
            parts.append(documents[np.asarray(view.segment.chunks[:, 0], dtype=np.int64)])
        allowed: Mask = np.concatenate(parts)
        allowed.flags.writeable = False  # shared by every search with this filter
        return allowed

    def dense_search(
        self, vector: Vectors, limit: int, allowed: Mask | None = None
    ) -> tuple[list[int], list[float]]:
        """The `limit` live chunks nearest `vector` (cosine), best first, from every segment: the
        exact segments' cosines in one scan (`ExactScan`), each approximate segment's own search.
        With `allowed` (`allowed(filter)`), the `limit` nearest among the allowed chunks."""
        query = np.ascontiguousarray(vector.reshape(-1), dtype=np.float32)
        searches: list[Callable[[], Found]] = [lambda: self.exact_scan.search(query, limit, allowed)]
        for base, search in self.approximate:
            local_allowed = None
            if allowed is not None:
                local_allowed = allowed[base : base + search.vectors.count]
                if not local_allowed.any():
                    continue
            searches.append(functools.partial(_approximate, search, base, query, limit, local_allowed))
        found = run_all(searches, side_by_side=self.searches_in_parallel)
        return top([rows for rows, _ in found], [scores for _, scores in found], limit)

    def lexical_search(
        self,
        terms: Sequence[str],
        limit: int,
        k1: float,
        b: float,
        statistics: CollectionStatistics | None = None,
        allowed: Mask | None = None,
    ) -> tuple[list[int], list[float]]:
        """The `limit` live chunks with the best positive BM25 score (parameters `k1`, `b`) for
        `terms`, best first; `statistics`: this reader's `statistics(terms)`, when already at hand.
        With `allowed` (`allowed(filter)`), the best among the allowed chunks, scored with the
        statistics of every live chunk: a filter narrows the answers, not what a term weighs."""
        if not terms:
            return [], []
        if statistics is None:
            statistics = self.statistics(terms)
        best = Best(limit)
        for first, last in self.scoring_blocks:
            block_allowed = None if allowed is None else allowed[self.bases[first] : self.bases[last]]
            if block_allowed is not None and not block_allowed.any():
                continue
            scores = score(self.postings[first:last], terms, statistics, k1, b)
            if block_allowed is not None:
                scores[~block_allowed] = 0.0
            local, values = positive_top(scores, limit, best.floor)
            best.add(local + self.bases[first], values.astype(np.float32))
        return best.result()

    def statistics(self, terms: Sequence[str]) -> CollectionStatistics:
        """N, df and avgdl for `terms` over every live chunk (`index.storage.postings`)."""
        return CollectionStatistics.of(self.postings, terms)

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """BM25's idf of each of a query's terms over the live chunks (`index.storage.postings`)."""
        statistics = self.statistics(terms)
        return {term: statistics.idf(term) for term in terms}


def _approximate(search: IvfSearch, base: int, query: Vectors, limit: int, allowed: Mask | None) -> Found:
    """An approximate segment's candidates for `query`, as global rows (the segment's start at `base`)."""
    local, cosines = search.search(query, limit, allowed)
    return local + base, cosines


def _ivf_search(view: SegmentView, alone: bool) -> IvfSearch:
    """The search of an IVF segment in a commit (`alone`: the commit's only segment): its own
    probes when it is alone or its settings name them, else `ivf_probes_in_segment`'s."""
    vectors = view.segment.vectors
    if not isinstance(vectors, IvfVectors):  # pragma: no cover - only called on IVF segments
        raise TypeError(f"segment {view.segment.name} has no IVF index")
    probes = vectors.probes
    if not view.segment.settings.vectors.ivf_nprobe:
        probes = ivf_probes_in_segment(vectors.probes, alone)
    return vectors.prepared(view.deleted_chunks, probes)


def _views_of(store: IndexStore, commit: CommitPoint, previous: IndexReader | None) -> list[SegmentView]:
    """The views of the commit's segments, re-using those of `previous` where a segment is
    listed with the same deletes file; every entry's counts checked against its view."""
    known = {}
    if previous is not None:
        known = {
            (entry.name, entry.deletes): view
            for entry, view in zip(previous.commit.segments, previous.views, strict=True)
        }
    commit_point = store.commits_dir / commit.file_name
    views = []
    for entry in commit.segments:
        view = known.get((entry.name, entry.deletes))
        if view is None:
            view = SegmentView.of(store.segment(entry.name), store.deleted_rows(entry))
        entry.check(view.segment, len(view.deleted), commit_point)
        views.append(view)
    return views
