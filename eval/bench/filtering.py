"""The `filters` phase: what a filter costs a hybrid search over 100k chunks, exact and IVF.

The index: one segment of `chunks` synthetic chunks (`eval.bench.footprint.synthetic_segment`:
documents of 3 chunks of real SciFact sentences, random unit vectors of dimension 384, BM25
postings of the sentences' real terms), written twice from the same seed: once with an exact
(flat) vector index, once with an IVF index (`approximate_threshold` at or below its size, as a
segment of 100k chunks gets by default). Each document carries a `source` (`SOURCE_SHARES`: one
source on 1% of the documents, one on 10%, one on 50%, the rest on another, rows shuffled, so a
source's chunks are spread over the segment) and a `published` instant spread evenly over 2025
(`publication_instants`), so a window of 1% of the year holds 1% of the documents. Both are
cached under `<work>/bases` and re-used by later runs.

The searches: `Retriever.search` (hybrid: dense + BM25 + fusion, k=5, default options), the
question vector given (no encoding; random unit vectors, SciFact questions as the text), over
each layout: unfiltered, then `source` matching 1%, 10% and 50% of the chunks and a `published`
range over 1% (`variant_filters`), each with its allowed-chunk mask cached by the reader (the
filter used before: `IndexReader.allowed` keeps the last 32) and on first use (a filter the
reader has not seen, which matches the same documents: `unseen`). The variants are interleaved
query by query, their order rotating, so a burst of load from elsewhere on a shared machine hits
all of them; ratios are each variant's p50 over the unfiltered p50 of the same layout and run,
and the median of the per-question ratios. Before the searches, on a freshly opened reader, the
cost of the mask alone: the first filter on a field (the segment's column for it is built from
the stored documents), a new filter on a field already built, and a repeated one (cached).

With `--compare-ref REF`, unfiltered searches of the current code and of REF (a temporary git
worktree) over the same indexes, each in a process of its own (`eval.bench.search_worker`),
interleaved block by block, the order alternating: current / REF is the median of the blocks'
p50 ratios (what filters cost a search that has none).

Left out: HTTP and encoding, several segments per layout, deleted documents, filters on other
fields (metadata, ids), and the filtered path of REF (it had none).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from eval.bench.build_compare import worktree
from eval.bench.figures import latency_summary, percentile, ratio
from eval.bench.footprint import MODEL, SentencePool, synthetic_segment
from eval.bench.hashing_app import DIMENSION
from index.embedding import HashingEmbedder
from index.search.filters import Filter, Match, Range
from index.search.modes import Mode
from index.search.options import RetrievalOptions
from index.search.reader import IndexReader
from index.search.retrieval import Retriever
from index.settings import IndexSettings, VectorIndexSettings
from index.storage.commits import SegmentEntry, first_commit
from index.storage.segments import StoredDocuments, publish_segment, stage_segment
from index.storage.store import IndexStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]
COMPLETE = "BENCH-COMPLETE"
INDEX_VERSION = 1  # bump when what `write_filter_index` writes changes: cached indexes are keyed by it
SOURCE_SHARES = {"share-1pct": 0.01, "share-10pct": 0.10, "share-50pct": 0.50}
OTHER_SOURCE = "rest"
YEAR_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
YEAR = dt.timedelta(days=365)
DATE_SHARE = 0.01  # the published range's share of the year (and of the documents)
DATE_WINDOW_START = 0.5  # where in the year the range starts, as a share of it
LAYOUTS = ("flat", "ivf")
UNFILTERED = "unfiltered"
FIRST_USE = ", first use"
K = 5
WARM_UP_QUESTIONS = 10
COMPARE_BLOCK = 20  # questions per turn of one side in the comparison with --compare-ref


def source_plan(documents: int, shares: Mapping[str, float], rng: np.random.Generator) -> list[str]:
    """The source of each of `documents` documents: `round(share * documents)` of each source in
    `shares`, `OTHER_SOURCE` for the rest, in a random order."""
    counts = {source: round(share * documents) for source, share in shares.items()}
    if sum(counts.values()) > documents:
        raise ValueError(f"shares {dict(shares)} add up to more than every document")
    plan = [source for source, count in counts.items() for _ in range(count)]
    plan += [OTHER_SOURCE] * (documents - len(plan))
    order = rng.permutation(documents)
    return [plan[index] for index in order.tolist()]


def publication_instants(documents: int, rng: np.random.Generator) -> list[dt.datetime]:
    """One instant per document, spread evenly over `YEAR` from `YEAR_START` (document i of the
    sorted ones falls in the i-th of `documents` equal slices, at a random point of it), in a
    random order: any window of the year holds its share of the documents, to one document."""
    slices = (np.arange(documents) + rng.random(documents)) / max(documents, 1)
    seconds = slices[rng.permutation(documents)] * YEAR.total_seconds()
    return [YEAR_START + dt.timedelta(seconds=round(float(value), 3)) for value in seconds]


def date_window(
    share: float = DATE_SHARE, start: float = DATE_WINDOW_START
) -> tuple[dt.datetime, dt.datetime]:
    """[begin, end) of the window covering `share` of the year, from `start` (a share) into it."""
    begin = YEAR_START + start * YEAR
    return begin, begin + share * YEAR


def source_filter(source: str, unseen: int | None = None) -> Filter:
    """`source` is `source`; with `unseen`, a second value no document has (`absent-<unseen>`), so
    the filter is new to the reader's cache of masks while it matches the same documents."""
    values = (source,) if unseen is None else (source, f"absent-{unseen}")
    return Filter(must=(Match("source", values),))


def date_filter(unseen: int | None = None) -> Filter:
    """`published` in `date_window()`; with `unseen`, the lower bound `unseen` microseconds later
    (a new filter to the cache; no document is published in that gap, to a microsecond's odds)."""
    begin, end = date_window()
    shift = dt.timedelta(microseconds=unseen or 0)
    return Filter(must=(Range("published", gte=begin + shift, lt=end),))


def variant_filters(unseen: int) -> dict[str, Filter | None]:
    """The variants one question is searched with: unfiltered, each filter as the reader has seen
    it before (its mask cached), and each on first use (`unseen`: a number not used before)."""
    seen: dict[str, Filter | None] = {UNFILTERED: None}
    first: dict[str, Filter | None] = {}
    for source, share in SOURCE_SHARES.items():
        seen[f"source {share:.0%}"] = source_filter(source)
        first[f"source {share:.0%}{FIRST_USE}"] = source_filter(source, unseen)
    seen[f"published {DATE_SHARE:.0%}"] = date_filter()
    first[f"published {DATE_SHARE:.0%}{FIRST_USE}"] = date_filter(unseen)
    return seen | first


def rotated(names: Sequence[str], turn: int) -> list[str]:
    """`names` starting at position `turn` (modulo their number), wrapping around."""
    if not names:
        return []
    start = turn % len(names)
    return [*names[start:], *names[:start]]


def summary(milliseconds: Mapping[str, Sequence[float]], baseline: str = UNFILTERED) -> dict[str, Any]:
    """Per variant: latency figures (with p95), its p50 over `baseline`'s, and the median of the
    per-question ratios (the lists are paired: item i of each is question i of the same turn)."""
    base = milliseconds[baseline]
    rows: dict[str, Any] = {}
    for name, values in milliseconds.items():
        figures: dict[str, Any] = dict(latency_summary(values))
        figures["p95_ms"] = round(percentile(values, 95), 2)
        figures["p50_ratio"] = ratio(figures["p50_ms"], latency_summary(base).get("p50_ms"))
        figures["paired_ratio_median"] = round(
            statistics.median(value / other for value, other in zip(values, base, strict=True)), 3
        )
        rows[name] = figures
    return rows


def filters_phase(
    work: Path,
    pool: SentencePool,
    questions: Sequence[str],
    chunks: int,
    queries: int,
    rounds: int,
    reference: str | None,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Write (or find) the two indexes of `chunks` chunks, time every variant over `queries`
    questions for `rounds` rounds, and, with `reference`, its unfiltered searches beside ours."""
    texts = list(questions[:queries])
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((len(texts), DIMENSION), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    figures: dict[str, Any] = {
        "chunks": chunks,
        "queries": len(texts),
        "rounds": rounds,
        "k": K,
        "source_shares": SOURCE_SHARES,
        "date_window": [bound.isoformat() for bound in date_window()],
        "blas_environment": {
            name: os.environ[name]
            for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
            if name in os.environ
        },
        "layouts": {},
    }
    roots = {}
    for layout in LAYOUTS:
        root = work / "bases" / f"filters-{chunks}-{layout}-v{INDEX_VERSION}"
        if not (root / COMPLETE).is_file():
            say(f"  filters: writing {chunks:,} synthetic chunks, {layout} vectors")
            seconds = write_filter_index(root, pool, chunks, layout == "ivf")
            (root / COMPLETE).write_text(f"{chunks} chunks written in {seconds:.1f} s\n", "utf-8")
        roots[layout] = root
    for layout, root in roots.items():
        say(f"  filters: {layout}: mask costs, then {rounds} round(s) of {len(texts)} questions x variants")
        figures["layouts"][layout] = measure_layout(root, texts, vectors, rounds)
    if reference:
        say(f"  filters: unfiltered searches, current code against {reference}")
        figures["reference"] = compare_unfiltered(roots, texts, vectors, reference, rounds, work, say)
    return figures


def write_filter_index(
    root: Path, pool: SentencePool, chunks: int, approximate: bool, seed: int = 0
) -> float:
    """A new index at `root` of one synthetic segment of `chunks` chunks whose documents carry a
    source and a publication instant (module docstring), exact or IVF; returns the seconds it took."""
    shutil.rmtree(root, ignore_errors=True)
    threshold = min(chunks, VectorIndexSettings().approximate_threshold) if approximate else chunks + 1
    settings = IndexSettings(vectors=VectorIndexSettings(approximate_threshold=threshold))
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    data = synthetic_segment(pool, chunks, "flt", rng, settings)
    originals = data.documents.originals or []
    sources = source_plan(len(originals), SOURCE_SHARES, rng)
    instants = publication_instants(len(originals), rng)
    data.documents = StoredDocuments.of(
        [
            replace(document, source=source, published=instant.isoformat())
            for document, source, instant in zip(originals, sources, instants, strict=True)
        ]
    )
    store = IndexStore(root)
    with store.write_lock():
        segment = stage_segment(store.segments_dir, data)
        publish_segment(segment)
        entry = SegmentEntry(segment.name, segment.document_count, segment.chunk_count)
        store.publish(first_commit(MODEL, DIMENSION, settings).successor((entry,)))
    return time.perf_counter() - started


def measure_layout(
    root: Path, texts: Sequence[str], vectors: npt.NDArray[np.float32], rounds: int
) -> dict[str, Any]:
    """The mask costs on a fresh reader, then every variant's search latencies (module docstring)."""
    store = IndexStore(root)
    reader = IndexReader.open(store)
    figures: dict[str, Any] = {"vector_index": _vector_kinds(reader), "masks": _mask_costs(reader)}
    retriever = Retriever(reader, HashingEmbedder(reader.dimension), RetrievalOptions())
    names = list(variant_filters(0))
    figures["allowed_share"] = {
        name: round(float(reader.allowed(chosen).mean()), 4)
        for name, chosen in variant_filters(0).items()
        if chosen is not None and FIRST_USE not in name
    }
    unseen = 1

    def timed(text: str, vector: npt.NDArray[np.float32], chosen: Filter | None) -> float:
        started = time.perf_counter()
        retriever.search(text, k=K, mode=Mode.HYBRID, query_vector=vector, filter=chosen)
        return 1000 * (time.perf_counter() - started)

    for text, vector in list(zip(texts, vectors, strict=True))[:WARM_UP_QUESTIONS]:
        for chosen in variant_filters(unseen).values():
            timed(text, vector, chosen)
        unseen += 1
    milliseconds: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds):
        for position, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
            chosen_filters = variant_filters(unseen)
            unseen += 1
            for name in rotated(names, number * len(texts) + position):
                milliseconds[name].append(timed(text, vector, chosen_filters[name]))
    figures["searches"] = summary(milliseconds)
    return figures


def _vector_kinds(reader: IndexReader) -> list[str]:
    return sorted({type(segment.vectors).__name__ for segment in reader.segments})


def _mask_costs(reader: IndexReader) -> dict[str, float]:
    """Milliseconds of `reader.allowed` alone, on a reader that has built no column yet."""

    def timed(chosen: Filter) -> float:
        started = time.perf_counter()
        reader.allowed(chosen)
        return round(1000 * (time.perf_counter() - started), 3)

    sources = list(SOURCE_SHARES)
    return {
        "source, first filter on the field (column built)": timed(source_filter(sources[0])),
        "source, new filter (column built before)": timed(source_filter(sources[1])),
        "source, repeated filter (mask cached)": timed(source_filter(sources[0])),
        "published, first filter on the field (column built)": timed(date_filter()),
        "published, new filter (column built before)": timed(date_filter(1)),
        "published, repeated filter (mask cached)": timed(date_filter()),
    }


def compare_unfiltered(
    roots: Mapping[str, Path],
    texts: Sequence[str],
    vectors: npt.NDArray[np.float32],
    reference: str,
    rounds: int,
    work: Path,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Unfiltered search latencies of the current code and of `reference` over each index in
    `roots`, two worker processes side by side, block by block (module docstring)."""
    scratch = work / "filters-compare"
    scratch.mkdir(parents=True, exist_ok=True)
    questions_path, vectors_path = scratch / "questions.json", scratch / "vectors.npy"
    questions_path.write_text(json.dumps(list(texts)), "utf-8")
    np.save(vectors_path, vectors)
    figures: dict[str, Any] = {"ref": reference, "block": COMPARE_BLOCK, "layouts": {}}
    with worktree(reference) as code:
        figures["commit"] = _short_commit(code)
        for layout, root in roots.items():
            say(f"  filters: {layout}: current and {reference} side by side")
            sides = {"current": PROJECT_ROOT, "reference": code}
            with ExitStack() as stack:
                workers = {
                    side: stack.enter_context(_Worker.start(path, root, vectors_path, questions_path))
                    for side, path in sides.items()
                }
                for worker in workers.values():  # warm-up: every question once, not counted
                    worker.run(0, len(texts))
                figures["layouts"][layout] = _compare_blocks(workers, len(texts), rounds)
    return figures


def _compare_blocks(workers: Mapping[str, _Worker], questions: int, rounds: int) -> dict[str, Any]:
    milliseconds: dict[str, list[float]] = {side: [] for side in workers}
    block_ratios = []
    sides = list(workers)
    turn = 0
    for _ in range(rounds):
        for start in range(0, questions, COMPARE_BLOCK):
            count = min(COMPARE_BLOCK, questions - start)
            block: dict[str, list[float]] = {}
            for side in rotated(sides, turn):
                block[side] = workers[side].run(start, count)
                milliseconds[side].extend(block[side])
            turn += 1
            block_ratios.append(statistics.median(block["current"]) / statistics.median(block["reference"]))
    runs = {
        side: {**latency_summary(values), "p95_ms": round(percentile(values, 95), 2)}
        for side, values in milliseconds.items()
    }
    return {
        "runs": runs,
        "p50_ratio": ratio(runs["current"]["p50_ms"], runs["reference"]["p50_ms"]),
        "block_ratio_median": round(statistics.median(block_ratios), 3),
        "blocks": len(block_ratios),
    }


class _Worker:
    """A `eval.bench.search_worker` process running the code in one checkout."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    @classmethod
    def start(cls, code: Path, root: Path, vectors: Path, questions: Path) -> _Worker:
        # Run from its source with `code` first on the path and as the working directory, so
        # `import index` is that checkout's, whichever has this module.
        source = (PROJECT_ROOT / "eval" / "bench" / "search_worker.py").read_text("utf-8")
        process = subprocess.Popen(
            # Absolute paths: the worker runs in `code`, and `--work-dir` may be relative.
            [
                sys.executable,
                "-c",
                source,
                *(str(path.resolve()) for path in (root, vectors, questions)),
                str(K),
            ],
            cwd=code,
            env={**os.environ, "PYTHONPATH": str(code)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        worker = cls(process)
        ready = worker._line()
        if ready != "ready":
            worker.close()
            raise RuntimeError(f"search worker with the code in {code} did not start: {ready!r}")
        return worker

    def __enter__(self) -> _Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, start: int, count: int) -> list[float]:
        """Milliseconds of the searches of questions `start` to `start + count`."""
        stdin = self._pipe(self.process.stdin)
        stdin.write(f"{start} {count}\n")
        stdin.flush()
        answer = self._line()
        values: list[float] = json.loads(answer)
        return values

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self._pipe(self.process.stdin).close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()

    def _line(self) -> str:
        return self._pipe(self.process.stdout).readline().strip()

    @staticmethod
    def _pipe(handle: IO[str] | None) -> IO[str]:
        if handle is None:  # pragma: no cover - both pipes are always asked for
            raise RuntimeError("worker pipe missing")
        return handle


def _short_commit(code: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()
