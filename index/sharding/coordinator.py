"""A search over a sharded index: fan out to the shards, merge, run the unchanged stages.

`ShardedSearcher.search` answers as `Retriever.search` does over one index of the same
documents, with the same `SearchOutcome`:

1. the question's terms (`index.text.analysis`);
2. first call to every shard, `state(terms)`: its commit, its part of the statistics, whether
   it has dated documents; the statistics are summed (`CollectionStatistics.summed`), so BM25's
   N, df and avgdl are the whole collection's. Asked only of the shards whose earlier answer,
   at the commit it was said of, does not hold every term (`index.sharding.known_states`); a
   shard not asked answers the next call only while that commit is still its live one, or the
   query takes this step on every shard after all;
3. the question's vector (given, or what gives it called now: an encoder elsewhere can work
   during step 2; else the coordinator's embedder); the question's dates (as of `as_of`, when any shard has dated documents) and the request's
   filter make the filter every shard applies (`index.search.query.searched_filter`);
4. second call, `candidates(request)`: each shard's dense and BM25 top-`limit`, from the commit
   of its first answer, with the global statistics (`index.sharding.shard`);
5. the answers merged (`index.sharding.gathered.GatheredCandidates`) and handed to
   `PassageRetriever.search`: fusion, near-duplicates, answer spans and answerability are the
   single-process code itself.

The shards are called one after another through `fan_out`, the one place a remote version
replaces (`ShardedSearcher(fan_out=...)`: `service.sharded` issues every shard's call as a Ray
Serve `handle.method.remote(...)`, then waits for them together). `index_version` is the
shards' commit versions joined by "," in shard order (`sharded_version`).

What a query sees while a write spans shards: each shard's commit as of the query's first call
to that shard. A sharded write commits shard by shard (`index.sharding.writer`), so a query may
see it on some shards and not yet on others; its `index_version` names exactly which commit of
each shard answered. There is no cross-shard snapshot.

Exactly equal to one index: the same passages in the same order, the same scores (to float
rounding), answers and `answerable`, for dense, bm25 and hybrid modes, with filters and question
dates, when the vectors are exact (flat) in both; IVF segments are searched per shard, so
approximate results may differ. Exact ties break by row, which is content order (document id,
chunk start) in the gathered candidates and in an index built in one go; in an index whose
later writes added segments, rows are not in content order and exact ties may break otherwise.
`widened` adds context windows (`index.search.context`) with a third call to the shards holding
hits, answered from the commit the hits came from. `search_documents` ranks documents
(`index.search.document_ranking`) over the same two calls, with more candidates per signal, and
equals it on one index as passage search does. With feedback it takes two more calls, from the
commits of the first: `vectors` to the shard holding the feedback passage (the stored vector
Rocchio moves the question's towards, picked by `document_ranking.feedback_source` from the first
candidates), then `candidates` to every shard with the moved vector in `CandidateRequest.also`,
whose answers carry the question's candidates and cosines and the moved vector's both; the
single-process stages then run over those, their own second search included.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from index.embedding import Embedder, Vectors
from index.errors import IndexNotFoundError
from index.search.context import widen_outcome
from index.search.document_ranking import DocumentSearchOutcome, feedback_source, search_documents
from index.search.feedback import rocchio
from index.search.filters import Filter
from index.search.modes import Mode
from index.search.options import DEFAULT_K, DEFAULT_MODE, RetrievalOptions
from index.search.query import searched_filter
from index.search.question_dates import dates_in_question
from index.search.retrieval import PassageRetriever, SearchOutcome
from index.sharding.assignment import shard_of
from index.sharding.gathered import GatheredCandidates, NotGatheredError
from index.sharding.known_states import KnownStates
from index.sharding.layout import ShardedLayout
from index.sharding.messages import (
    CandidateRequest,
    ShardCandidates,
    ShardState,
    VectorRequest,
    WindowRequest,
)
from index.sharding.shard import EMPTY_VERSION, Shard, ShardVersionGoneError
from index.storage.postings import CollectionStatistics
from index.text.analysis import terms as analysed

Answer = TypeVar("Answer")
VERSION_SEPARATOR = ","  # between the shards' versions in a sharded `index_version`
VectorSource = Vectors | Callable[[], Vectors]  # the question's vector, or what gives it when asked


class ShardCalls(Protocol):
    """What the coordinator asks of a shard (`index.sharding.shard.Shard`, or a remote one)."""

    def state(self, terms: Sequence[str]) -> ShardState: ...

    def windows(self, request: WindowRequest) -> tuple[tuple[int, int], ...]: ...

    def candidates(self, request: CandidateRequest) -> ShardCandidates: ...

    def vectors(self, request: VectorRequest) -> Vectors: ...


def fan_out(calls: Sequence[Callable[[], Answer]]) -> list[Answer]:
    """Every call's answer, in order: in-process, one after another."""
    return [call() for call in calls]


class FanOut(Protocol):
    """What calls the shards: `fan_out`, or a remote version with the same contract."""

    def __call__(self, calls: Sequence[Callable[[], Answer]]) -> list[Answer]: ...


def sharded_version(states: Sequence[ShardState]) -> str:
    return VERSION_SEPARATOR.join(state.version for state in states)


@dataclass(frozen=True)
class FetchedWindows:
    """The windows the shards computed for one outcome's hits (by the hit's row), for `n`."""

    spans: dict[int, tuple[int, int]]
    n: int

    def chunk_window(self, row: int, n: int) -> tuple[int, int]:
        if n != self.n or row not in self.spans:
            raise NotGatheredError(f"no window of {n} chunks fetched for row {row}")
        return self.spans[row]


@dataclass(frozen=True)
class GatheringRound:
    """One round of shard calls: the states it answered from, what each shard was asked (its
    version aside) and the candidates gathered."""

    states: tuple[ShardState, ...]
    request: CandidateRequest
    candidates: GatheredCandidates


class ShardedSearcher:
    def __init__(
        self,
        shards: Sequence[ShardCalls],
        embedder: Embedder,
        options: RetrievalOptions,
        fan_out: FanOut = fan_out,
    ) -> None:
        self.shards = list(shards)
        self.embedder = embedder
        self.options = options
        self.fan_out = fan_out
        self.known = KnownStates(len(self.shards))

    @classmethod
    def open(cls, layout: ShardedLayout, embedder: Embedder, options: RetrievalOptions) -> ShardedSearcher:
        """A searcher over the shards of `layout`, each an in-process `Shard`."""
        return cls([Shard(i, store) for i, store in enumerate(layout.stores())], embedder, options)

    def search(
        self,
        query: str,
        k: int = DEFAULT_K,
        mode: Mode = DEFAULT_MODE,
        query_vector: VectorSource | None = None,
        filter: Filter | None = None,
        as_of: dt.date | None = None,
    ) -> SearchOutcome:
        """`Retriever.search` over every shard (module docstring). `query_vector` may be a
        callable giving the vector: it is called once the shards have answered the first step,
        so that an encoder working elsewhere overlaps that step."""
        if query_vector is None:
            query_vector = functools.partial(self._embedded, query)
        gathered = self.gather(query, k, mode, query_vector, filter, as_of)
        retriever = PassageRetriever(gathered, self.embedder, self.options)
        return retriever.search(query, k, mode, gathered.vector, filter, as_of)

    def search_documents(
        self,
        query: str,
        k: int,
        query_vector: VectorSource | None = None,
        feedback: bool = False,
        filter: Filter | None = None,
        as_of: dt.date | None = None,
    ) -> DocumentSearchOutcome:
        """`index.search.document_ranking.search_documents` over every shard: its stages run
        over both signals' global top `document_candidates_for(k)`, gathered as for `search`.
        With `feedback`, two more calls (module docstring) gather what its second round reads."""
        if query_vector is None:
            query_vector = functools.partial(self._embedded, query)
        limit = self.options.document_candidates_for(k)
        first = self._gathered(query, k, Mode.HYBRID, query_vector, filter, as_of, limit)
        retriever = PassageRetriever(first.candidates, self.embedder, self.options)
        if feedback:
            retriever = self._with_feedback(first, retriever, query, filter, as_of)
        return search_documents(retriever, query, first.candidates.vector, k, feedback, filter, as_of)

    def _with_feedback(
        self,
        first: GatheringRound,
        retriever: PassageRetriever,
        query: str,
        filter: Filter | None,
        as_of: dt.date | None,
    ) -> PassageRetriever:
        """A retriever over candidates gathered for the question's vector and for the vector
        feedback moves it to, from the commits of the `first` round, with the feedback passage's
        stored vector; `retriever` itself when no document ranks (no feedback then)."""
        question = retriever.query(query, first.candidates.vector, filter, as_of)
        source = feedback_source(retriever, question, first.request.limit)
        if source is None:
            return retriever
        chunk = first.candidates.chunk(source)
        key = (chunk.document_id, chunk.start)
        owner = shard_of(chunk.document_id, len(self.shards))
        [stored] = self.fan_out(
            [
                functools.partial(
                    self.shards[owner].vectors, VectorRequest(first.states[owner].version, (key,))
                )
            ]
        )
        moved = rocchio(question.vector, stored, self.options.feedback_weight)
        answers = self.fan_out(
            [
                functools.partial(
                    shard.candidates,
                    replace(first.request, version=state.version, live_only=False, also=(moved,)),
                )
                for shard, state in zip(self.shards, first.states, strict=True)
            ]
        )
        gathered = GatheredCandidates(
            first.candidates.version,
            first.candidates.has_dates,
            first.request.statistics,
            first.request.limit,
            answers,
            first.request.dense,
            first.request.lexical,
            first.request.vector,
            also=(moved,),
            known_vectors={key: stored.reshape(-1)},
        )
        return PassageRetriever(gathered, self.embedder, self.options)

    def seen(self, index_version: str) -> None:
        """A write through this service answered `index_version` (a sharded one): what is known
        of a shard at any other commit is dropped, so that the next query asks that shard's
        state rather than being refused by it (`index.sharding.known_states`)."""
        self.known.seen(index_version.split(VERSION_SEPARATOR))

    def _embedded(self, query: str) -> Vectors:
        return self.embedder.embed_batch([query]).reshape(-1)

    def widened(self, outcome: SearchOutcome, n: int) -> SearchOutcome:
        """`outcome` (this searcher's) with each hit widened by `n` chunks on each side
        (`index.search.context.widen_outcome`), one more call to each shard holding a hit,
        answered from the commit the hit came from."""
        if n <= 0 or not outcome.hits:
            return outcome
        versions = outcome.index_version.split(VERSION_SEPARATOR)
        owners = {hit.row: shard_of(hit.document.id, len(self.shards)) for hit in outcome.hits}
        asked = {
            shard: [hit for hit in outcome.hits if owners[hit.row] == shard]
            for shard in sorted(set(owners.values()))
        }
        answers = self.fan_out(
            [
                functools.partial(
                    self.shards[shard].windows,
                    WindowRequest(versions[shard], tuple((h.document.id, h.chunk.start) for h in hits), n),
                )
                for shard, hits in asked.items()
            ]
        )
        spans = {
            hit.row: span
            for hits, found in zip(asked.values(), answers, strict=True)
            for hit, span in zip(hits, found, strict=True)
        }
        return widen_outcome(outcome, FetchedWindows(spans, n), n)

    def gather(
        self,
        query: str,
        k: int,
        mode: Mode,
        vector_source: VectorSource,
        filter: Filter | None = None,
        as_of: dt.date | None = None,
        limit: int | None = None,
    ) -> GatheredCandidates:
        """Steps 2 to 5 of the module docstring: the candidates `search` runs the stages over,
        `limit` per signal (default: what a search for `k` passages takes).
        When the shards' states for the query's terms are known (`index.sharding.known_states`),
        step 2 is skipped and each shard answers only from the live commit they were known for;
        a shard whose live commit changed since makes the query take both steps."""
        return self._gathered(query, k, mode, vector_source, filter, as_of, limit).candidates

    def _gathered(
        self,
        query: str,
        k: int,
        mode: Mode,
        vector_source: VectorSource,
        filter: Filter | None,
        as_of: dt.date | None,
        limit: int | None,
    ) -> GatheringRound:
        """`gather`, with the shards' states and the request the candidates answer. The first
        round asks `state` only of the shards whose state for the terms is not known, and the
        others answer `live_only`; when one refused (its live commit moved on), a second round
        asks every shard."""
        terms = tuple(analysed(query))
        vector = _once(vector_source)
        if limit is None:
            limit = self.options.candidates_for(k)
        known = self.known.states(terms)
        if any(state is not None for state in known):
            try:
                return self._candidates(
                    self._completed(known, terms),
                    query,
                    terms,
                    mode,
                    limit,
                    vector(),
                    filter,
                    as_of,
                    live_only=[state is not None for state in known],
                )
            except ShardVersionGoneError:
                pass  # asked again below, every shard, as if nothing were known
        states = self._completed([None] * len(self.shards), terms)
        return self._candidates(
            states, query, terms, mode, limit, vector(), filter, as_of, live_only=[False] * len(states)
        )

    def _completed(self, known: Sequence[ShardState | None], terms: tuple[str, ...]) -> list[ShardState]:
        """Every shard's state for `terms`: `known`'s, and for each shard where it is None, the
        shard's answer to `state` now (one fan-out to those shards, asked of the terms carried
        over from its previous commit too), which is remembered."""
        unknown = [shard for shard, state in enumerate(known) if state is None]
        answers = self.fan_out(
            [
                functools.partial(self.shards[shard].state, self.known.terms_to_ask(shard, terms))
                for shard in unknown
            ]
        )
        self.known.remember(answers)
        asked = {state.shard: _of_terms(state, terms) for state in answers}
        return [asked[shard] if state is None else state for shard, state in enumerate(known)]

    def _candidates(
        self,
        states: Sequence[ShardState],
        query: str,
        terms: tuple[str, ...],
        mode: Mode,
        limit: int,
        vector: Vectors,
        filter: Filter | None,
        as_of: dt.date | None,
        live_only: Sequence[bool],
    ) -> GatheringRound:
        """Steps 3 to 5, from the shards' `states`: the signals of `mode`, `limit` per signal;
        `live_only[i]`: shard i answers only while its state's version is its live commit."""
        if all(state.version == EMPTY_VERSION for state in states):
            raise IndexNotFoundError("no sharded index here yet: no shard holds a commit")
        statistics = CollectionStatistics.summed([state.statistics for state in states])
        has_dates = any(state.has_dates for state in states)
        dates = None if as_of is None else dates_in_question(has_dates, query, as_of)
        request = CandidateRequest(
            version="",
            vector=vector.reshape(-1),
            terms=terms,
            statistics=statistics,
            limit=limit,
            k1=self.options.bm25_k1,
            b=self.options.bm25_b,
            filter=searched_filter(filter, dates),
            dense=mode != Mode.BM25,
            lexical=mode != Mode.DENSE,
        )
        answers = self.fan_out(
            [
                functools.partial(shard.candidates, replace(request, version=state.version, live_only=live))
                for shard, state, live in zip(self.shards, states, live_only, strict=True)
            ]
        )
        candidates = GatheredCandidates(
            sharded_version(states),
            has_dates,
            statistics,
            request.limit,
            answers,
            request.dense,
            request.lexical,
            request.vector,
        )
        return GatheringRound(tuple(states), request, candidates)


def _of_terms(state: ShardState, terms: Sequence[str]) -> ShardState:
    """`state` with the document frequencies of `terms` only (it may hold carried-over terms)."""
    statistics = state.statistics
    frequency = {term: statistics.document_frequency[term] for term in terms}
    return replace(
        state, statistics=CollectionStatistics(statistics.chunks, statistics.total_length, frequency)
    )


def _once(source: VectorSource) -> Callable[[], Vectors]:
    """What gives the vector of `source`, calling a callable source once at most."""
    if not callable(source):
        return lambda: source

    @functools.cache
    def resolved() -> Vectors:
        return source()

    return resolved
