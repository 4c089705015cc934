"""Filters (index/search/filters.py): what each condition matches, the rules a filter must follow,
and searches under a filter: only matching passages, and exactly the unfiltered ranking of each
signal restricted to them (property test over generated corpora and filters)."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import index.storage.segments
from corpus import Document
from index.embedding import HashingEmbedder
from index.search.filters import Filter, FilterError, HasId, IsEmpty, Match, Range
from index.search.modes import Mode
from index.search.options import RetrievalOptions
from index.search.reader import IndexReader
from index.search.retrieval import Retriever
from index.settings import IndexSettings
from index.storage.field_keys import field_value
from index.storage.fields import DocumentFields
from index.storage.store import IndexStore
from index.storage.vectors import VectorIndexSettings
from index.write.writer import IndexWriter

RECORDS: list[dict[str, Any]] = [
    {
        "id": "a",
        "source": "Nournews",
        "published": "2025-11-05",
        "metadata": {"words": 800, "tags": ["iran"]},
    },
    {"id": "b", "source": "Dawn", "published": "2025-11-30T23:30:00+00:00", "metadata": {"words": 3.0}},
    {"id": "c", "source": "Dawn", "published": "2025-12-01", "metadata": {"tags": ["iran", "pakistan"]}},
    {"id": "d", "source": "", "published": "", "metadata": {"words": True, "place": {"country": "PK"}}},
]


def fields() -> DocumentFields:
    return DocumentFields(len(RECORDS), lambda key: [field_value(record, key) for record in RECORDS])


def matching(condition: Any) -> list[str]:
    mask = Filter(must=(condition,)).documents(fields())
    return [record["id"] for record, kept in zip(RECORDS, mask, strict=True) if kept]


def test_match_is_exact_and_numbers_compare_by_value() -> None:
    assert matching(Match("source", ("Dawn",))) == ["b", "c"]
    assert matching(Match("source", ("dawn",))) == []
    assert matching(Match("source", ("Dawn", "Nournews"))) == ["a", "b", "c"]
    assert matching(Match("metadata.words", (3,))) == ["b"]  # 3 equals 3.0
    assert matching(Match("metadata.words", (1,))) == []  # True is not the number 1
    assert matching(Match("metadata.words", (True,))) == ["d"]
    assert matching(Match("metadata.tags", ("iran",))) == ["a", "c"]  # any item of a list
    assert matching(Match("metadata.place.country", ("PK",))) == ["d"]
    assert matching(HasId(("c", "a", "zz"))) == ["a", "c"]


def test_is_empty_and_its_negation_exists() -> None:
    assert matching(IsEmpty("published")) == ["d"]
    assert matching(IsEmpty("metadata.tags")) == ["b", "d"]
    assert matching(Filter(must_not=(IsEmpty("metadata.words"),))) == ["a", "b", "d"]


def test_ranges_over_numbers_skip_other_kinds() -> None:
    assert matching(Range("metadata.words", gte=3)) == ["a", "b"]  # True is not a number
    assert matching(Range("metadata.words", gt=3)) == ["a"]
    assert matching(Range("metadata.words", gt=3, gte=3)) == ["a"]  # the stricter bound wins
    assert matching(Range("metadata.words", lt=800)) == ["b"]


def test_a_date_bound_stands_for_its_whole_day() -> None:
    november = dt.date(2025, 11, 30)
    assert matching(Range("published", lte=november)) == ["a", "b"]  # b: 23:30 on the 30th
    assert matching(Range("published", lt=november)) == ["a"]
    assert matching(Range("published", gt=november)) == ["c"]
    assert matching(Range("published", gte=dt.date(2025, 11, 5), lte=dt.date(2025, 11, 5))) == ["a"]
    assert matching(Range("published", gte=dt.datetime(2025, 11, 30, 23, 0, tzinfo=dt.UTC))) == ["b", "c"]
    # A time without offset is UTC; an offset moves the instant.
    assert matching(Range("published", lt=dt.datetime(2025, 11, 30, 23, 30))) == ["a"]
    tehran = dt.timezone(dt.timedelta(hours=3, minutes=30))
    at_b = dt.datetime(2025, 12, 1, 3, 0, tzinfo=tehran)  # 2025-11-30 23:30 UTC
    assert matching(Range("published", gte=at_b)) == ["b", "c"]
    assert matching(Range("published", gt=at_b)) == ["c"]


def test_must_should_and_must_not_combine() -> None:
    dawn, iran = Match("source", ("Dawn",)), Match("metadata.tags", ("iran",))
    assert matching(Filter(must=(dawn, iran))) == ["c"]
    assert matching(Filter(should=(dawn, iran))) == ["a", "b", "c"]
    assert matching(Filter(must_not=(dawn,))) == ["a", "d"]
    assert matching(Filter(should=(Filter(must=(dawn, iran)), HasId(("d",))))) == ["c", "d"]
    assert Filter().documents(fields()).all()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Match("sorce", ("x",)), "unknown field 'sorce'"),
        (lambda: Match("metadata.", ("x",)), "unknown field"),
        (lambda: Match("source", ()), "at least one value"),
        (lambda: Range("published"), "at least one of gt, gte, lt, lte"),
        (lambda: Range("title", gte=1), "field 'title' is text"),
        (lambda: Range("published", gte=2025), "ISO 8601 dates"),
        (lambda: Range("metadata.x", gte=1, lt=dt.date(2025, 1, 1)), "mixes dates and numbers"),
        (lambda: HasId(()), "at least one document id"),
    ],
)
def test_a_filter_that_breaks_a_rule_says_which(make: Any, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        make()


def test_to_dict_is_the_json_form() -> None:
    filter = Filter(
        must=(Match("source", ("Dawn",)), Range("published", gte=dt.date(2025, 11, 1))),
        must_not=(HasId(("a", "b")),),
        should=(Match("author", ("X", "Y")), IsEmpty("url")),
    )
    assert filter.to_dict() == {
        "must": [
            {"key": "source", "match": {"value": "Dawn"}},
            {"key": "published", "range": {"gte": "2025-11-01"}},
        ],
        "should": [{"key": "author", "match": {"any": ["X", "Y"]}}, {"is_empty": {"key": "url"}}],
        "must_not": [{"has_id": ["a", "b"]}],
    }


# --- searches under a filter, over generated corpora ------------------------------------------

WORDS = [
    "port",
    "pipeline",
    "border",
    "trade",
    "energy",
    "rail",
    "wheat",
    "summit",
    "bank",
    "visa",
    "gas",
    "power",
    "talks",
    "deal",
]
SOURCES = ["Nournews", "Dawn", "Iran Daily", ""]
DAYS = [dt.date(2025, 10, 1) + dt.timedelta(days=n) for n in range(0, 90, 7)]
QUESTIONS = ["trade talks on the border", "gas pipeline deal", "wheat and rail", "the summit"]


@st.composite
def corpora(draw: st.DrawFn) -> list[Document]:
    count = draw(st.integers(3, 18))
    documents = []
    for n in range(count):
        words = draw(st.lists(st.sampled_from(WORDS), min_size=4, max_size=14))
        metadata: dict[str, Any] = {}
        if draw(st.booleans()):
            metadata["words"] = draw(st.integers(0, 5))
        if draw(st.booleans()):
            metadata["tags"] = draw(st.lists(st.sampled_from(["iran", "pakistan", "ecn"]), max_size=2))
        documents.append(
            Document(
                id=f"doc-{n}",
                title=f"Report {n}",
                text=f"Report {n}: " + " ".join(words) + ".",
                source=draw(st.sampled_from(SOURCES)),
                published=draw(st.sampled_from(["", *(day.isoformat() for day in DAYS)])),
                metadata=metadata,
            )
        )
    return documents


def conditions() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.builds(
            Match, st.just("source"), st.lists(st.sampled_from(SOURCES), min_size=1, max_size=2).map(tuple)
        ),
        st.builds(Match, st.just("metadata.tags"), st.sampled_from([("iran",), ("pakistan", "ecn")])),
        st.builds(
            Match, st.just("metadata.words"), st.lists(st.integers(0, 5), min_size=1, max_size=2).map(tuple)
        ),
        st.builds(lambda day: Range("published", gte=day), st.sampled_from(DAYS)),
        st.builds(lambda day: Range("published", lt=day), st.sampled_from(DAYS)),
        st.builds(
            lambda low, high: Range("metadata.words", gt=low, lte=high), st.integers(0, 3), st.integers(1, 5)
        ),
        st.builds(IsEmpty, st.sampled_from(["published", "source", "metadata.tags"])),
        st.builds(HasId, st.lists(st.sampled_from([f"doc-{n}" for n in range(18)]), min_size=1).map(tuple)),
    )
    return st.recursive(
        leaves,
        lambda inner: st.builds(
            Filter,
            st.lists(inner, max_size=2).map(tuple),
            st.lists(inner, max_size=2).map(tuple),
            st.lists(inner, max_size=1).map(tuple),
        ),
        max_leaves=5,
    )


def reference(condition: Any, document: Document) -> bool:
    """Whether `document` matches, worked out from the Document itself (not the columns)."""
    record = document.to_dict()
    if isinstance(condition, Filter):
        return (
            all(reference(c, document) for c in condition.must)
            and (not condition.should or any(reference(c, document) for c in condition.should))
            and not any(reference(c, document) for c in condition.must_not)
        )
    if isinstance(condition, HasId):
        return document.id in condition.ids
    value = field_value(record, condition.key)
    items = value if isinstance(value, list) else [value]
    if isinstance(condition, Match):
        return any(
            item == wanted and type(item) is type(wanted) for item in items for wanted in condition.values
        )
    if isinstance(condition, IsEmpty):
        return value in (None, "", [], {})
    if condition.key == "published":
        if not value:
            return False
        day = dt.date.fromisoformat(value)
        low_ok = condition.gte is None or day >= condition.gte
        return low_ok and (condition.lt is None or day < condition.lt)
    numbers = [item for item in items if isinstance(item, int) and not isinstance(item, bool)]
    return any(condition.gt < number <= condition.lte for number in numbers)


def write(root: Path, documents: list[Document], approximate: bool) -> IndexReader:
    """The documents as several segments with a delete and a replacement (IVF when `approximate`)."""
    vectors = (
        VectorIndexSettings(approximate_threshold=3, ivf_lists=2) if approximate else VectorIndexSettings()
    )
    writer = IndexWriter(IndexStore(root), HashingEmbedder(), settings=IndexSettings(vectors=vectors))
    for begin in range(0, len(documents), 5):
        writer.upsert(documents[begin : begin + 5])
    writer.delete([documents[0].id])
    return IndexReader.open(IndexStore(root))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents=corpora(), condition=conditions(), question=st.sampled_from(QUESTIONS))
def test_a_filtered_search_is_the_unfiltered_ranking_restricted_to_matches(
    documents: list[Document], condition: Any, question: str
) -> None:
    filter = condition if isinstance(condition, Filter) else Filter(must=(condition,))
    with tempfile.TemporaryDirectory() as directory:
        reader = write(Path(directory), documents, approximate=False)
        retriever = Retriever(reader, HashingEmbedder(), RetrievalOptions())
        live = {document.id: document for document in documents[1:]}
        matches = {doc_id for doc_id, document in live.items() if reference(filter, document)}
        allowed = reader.allowed(filter)
        assert {reader.document_id_of(row) for row in np.flatnonzero(allowed).tolist()} == matches
        everything = reader.chunk_count + 10
        for mode in (Mode.DENSE, Mode.BM25):
            unfiltered = retriever.rank(question, mode, limit=everything)
            restricted = [(row, score) for row, score in unfiltered if allowed[row]]
            assert retriever.rank(question, mode, limit=everything, filter=filter) == restricted
            # A small limit gives the head of the same list.
            assert retriever.rank(question, mode, limit=3, filter=filter) == restricted[:3]
        vector = retriever.encode(question)
        filtered = retriever.ranking(retriever.query(question, vector, filter), Mode.HYBRID, everything)
        whole = retriever.ranking(retriever.query(question, vector), Mode.HYBRID, everything)
        assert filtered.dense.rows == [row for row in whole.dense.rows if allowed[row]]
        assert filtered.lexical.rows == [row for row in whole.lexical.rows if allowed[row]]
        assert {row for row, _ in filtered.ordered} == set(filtered.dense.rows) | set(filtered.lexical.rows)
        for mode in Mode:
            outcome = retriever.search(question, k=5, mode=mode, filter=filter)
            assert {hit.document.id for hit in outcome.hits} <= matches
            if not matches:
                assert outcome.hits == []
                assert not outcome.answerable


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents=corpora(), condition=conditions(), exact_rows=st.sampled_from([0, 20_000]))
def test_ivf_segments_under_a_filter_give_the_nearest_matching_passages(
    documents: list[Document], condition: Any, exact_rows: int
) -> None:
    """IVF segments search a filter's rows exactly when they are few, else with FAISS's selector
    and, if the probed cells hold too few of them, exactly: never fewer than the limit."""
    filter = condition if isinstance(condition, Filter) else Filter(must=(condition,))
    original = index.storage.segments.EXACT_FILTERED_ROWS
    index.storage.segments.EXACT_FILTERED_ROWS = exact_rows
    try:
        with tempfile.TemporaryDirectory() as directory:
            reader = write(Path(directory), documents, approximate=True)
            allowed = reader.allowed(filter)
            vector = HashingEmbedder().embed_batch(["trade talks"])[0]
            for limit in (1, 4, 50):
                rows, scores = reader.dense_search(vector, limit, allowed)
                assert all(allowed[row] for row in rows)
                assert len(rows) == min(limit, int(allowed.sum()))
                exact = sorted(
                    (float(np.float32(reader.chunk_vectors([row])[0] @ vector)), row)
                    for row in np.flatnonzero(allowed).tolist()
                )
                if exact_rows:  # searched exactly: the true nearest
                    assert scores == pytest.approx([score for score, _ in reversed(exact)][:limit], abs=1e-6)
    finally:
        index.storage.segments.EXACT_FILTERED_ROWS = original


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents=corpora(), condition=conditions())
def test_ivf_segments_score_a_filter_s_rows_as_their_own_scan_does(
    documents: list[Document], condition: Any
) -> None:
    """Searched exactly (few rows), an IVF segment's filtered cosines are bit for bit those its
    unfiltered scan gives the same rows (its 2 cells are all probed, so that scan is exact too),
    and its vectors read back on one thread equal those `rows` reads."""
    filter = condition if isinstance(condition, Filter) else Filter(must=(condition,))
    with tempfile.TemporaryDirectory() as directory:
        reader = write(Path(directory), documents, approximate=True)
        allowed = reader.allowed(filter)
        vector = HashingEmbedder().embed_batch(["trade talks"])[0]
        everything = dict(zip(*reader.dense_search(vector, reader.chunk_count), strict=True))
        rows, scores = reader.dense_search(vector, 50, allowed)
        assert scores == [everything[row] for row in rows]
        for segment in reader.segments:
            vectors = segment.vectors
            if not isinstance(vectors, index.storage.segments.IvfVectors):
                continue  # a segment of fewer chunks than the threshold is exact
            local = np.arange(segment.chunk_count, dtype=np.int64)[::-1].copy()
            assert np.array_equal(vectors.rows_in_this_thread(local), vectors.rows(local))


def test_a_selective_filter_still_fills_k(tmp_path: Path) -> None:
    """Five matching documents among many: a search for k=5 returns all five, whatever their
    rank in the unfiltered search."""
    documents = [
        Document(
            id=f"d{n}",
            text=f"Report {n} on wheat exports and the rail link {n}.",
            source="Dawn" if n % 9 == 0 else "X",
        )
        for n in range(45)
    ]
    reader = write(tmp_path / "index", documents, approximate=False)
    retriever = Retriever(reader, HashingEmbedder(), RetrievalOptions(candidates=5))
    dawn = Filter(must=(Match("source", ("Dawn",)),))
    for mode in Mode:
        outcome = retriever.search("rail link", k=5, mode=mode, filter=dawn)
        assert sorted(hit.document.id for hit in outcome.hits) == ["d18", "d27", "d36", "d9"]  # d0 deleted
