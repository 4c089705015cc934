"""Footprint: bytes on disk and resident memory per chunk of an index of 100k to 1M chunks.

Embedding a million chunks in Python is too slow, so segments are written directly
(`SegmentData` -> `stage_segment` -> `publish_segment` -> one commit), shaped like the real thing:

* documents of 3 chunks, each chunk 5 real SciFact sentences (so ~5 sentences per chunk, as a
  news chunk of 200 word pieces has), the document text being its sentences joined; chunks do
  not overlap (real ones share 40 word pieces with their neighbour, ~20 % more text per chunk);
* one random unit vector (float32, dimension 384) per chunk and one per sentence;
* BM25 postings built from the real terms of those sentences (`index.text.analysis.terms`), so the
  vocabulary, document frequencies and chunk lengths are those of real text (titles left out).

Segments hold up to 100k chunks each; a segment of `approximate_threshold` (100k) chunks or more
stores an IVF index holding its vectors instead of `chunk_vectors.npy` (the report says which).
The 1M index is measured as 10 such segments, then force-merged into one when this machine has
the memory the merge needs (estimated from `index.write.merging.merge_segments`, which holds every
vector about twice at its peak), else the report says why not.

Disk: every file of the live commit, by kind (chunk vectors, sentence vectors, postings,
documents, other) and `du` of the whole directory. Memory: a fresh process
(`eval.bench.footprint_probe`) reads its resident set before opening the index, after
`IndexReader.open`, after ~100 hybrid searches (random query vectors, real SciFact questions),
and VmHWM; growth per chunk is reported for its own memory (RssAnon) and for mapped index files
(RssFile, page cache) apart. The index was just written, so its files are in the page cache:
mapped-file figures are an upper bound of what a query touches, not what it needs.
Left out: the real model, and any index file format other than what `stage_segment` writes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from corpus import Document
from eval.bench.hashing_app import DIMENSION
from index.embedding import HashingEmbedder
from index.settings import IndexSettings
from index.storage.commits import SegmentEntry, first_commit
from index.storage.postings import Postings
from index.storage.segments import SegmentData, StoredDocuments, publish_segment, stage_segment
from index.storage.store import IndexStore
from index.text.analysis import terms
from index.write.writer import IndexWriter

MODEL = "synthetic-random-unit-vectors"
CHUNKS_PER_DOCUMENT = 3
SENTENCES_PER_CHUNK = 5
SEGMENT_CHUNKS = 100_000
PROJECT_ROOT = Path(__file__).resolve().parents[2]

KINDS = {
    "chunk_vectors.npy": "chunk vectors",
    "vectors.ivf": "chunk vectors",
    "sentence_vectors.npy": "sentence vectors",
    "terms.json": "postings",
    "term_ptr.npy": "postings",
    "posting_rows.npy": "postings",
    "posting_tf.npy": "postings",
    "chunk_lengths.npy": "postings",
    "documents.jsonl": "documents",
    "document_offsets.npy": "documents",
    "ids.json": "documents",
}


@dataclass(frozen=True)
class SentencePool:
    """Real sentences and their BM25 terms, as ids into a sorted vocabulary (so column order is
    the vocabulary's, as `Postings.build` makes it)."""

    sentences: list[str]
    questions: npt.NDArray[np.bool_]
    vocabulary: list[str]
    term_ids: npt.NDArray[np.int32]  # all sentences' term ids, one after another
    term_ptr: npt.NDArray[np.int64]
    titles: list[str]

    @classmethod
    def of(cls, sentences: Sequence[str], titles: Sequence[str]) -> SentencePool:
        sentence_terms = [terms(sentence) for sentence in sentences]
        vocabulary = sorted({term for found in sentence_terms for term in found})
        column = {term: index for index, term in enumerate(vocabulary)}
        pointer = np.zeros(len(sentences) + 1, dtype=np.int64)
        np.cumsum([len(found) for found in sentence_terms], out=pointer[1:])
        ids = np.fromiter((column[t] for found in sentence_terms for t in found), np.int32, int(pointer[-1]))
        questions = np.array([s.rstrip("\"'”’)").endswith("?") for s in sentences], dtype=bool)
        return cls(list(sentences), questions, vocabulary, ids, pointer, list(titles))


def synthetic_segment(
    pool: SentencePool, chunks: int, prefix: str, rng: np.random.Generator, settings: IndexSettings
) -> SegmentData:
    """A segment of `chunks` chunks (module docstring), document ids `<prefix>-<n>`."""
    picks = rng.integers(0, len(pool.sentences), size=(chunks, SENTENCES_PER_CHUNK))
    documents: list[Document] = []
    chunk_rows = np.zeros((chunks, 3), dtype=np.int64)
    spans = np.zeros((chunks * SENTENCES_PER_CHUNK, 2), dtype=np.int64)
    sentence = 0
    for first in range(0, chunks, CHUNKS_PER_DOCUMENT):
        row = len(documents)
        parts: list[str] = []
        position = 0
        for chunk in range(first, min(first + CHUNKS_PER_DOCUMENT, chunks)):
            chunk_start = position
            for pick in picks[chunk].tolist():
                text = pool.sentences[pick]
                spans[sentence] = (position, position + len(text))
                sentence += 1
                parts.append(text)
                position += len(text) + 1
            chunk_rows[chunk] = (row, chunk_start, position - 1)
        title = pool.titles[int(rng.integers(len(pool.titles)))]
        documents.append(Document(id=f"{prefix}-{row:07d}", text=" ".join(parts), title=title))
    return SegmentData(
        documents=StoredDocuments.of(documents),
        chunks=chunk_rows,
        chunk_vectors=_unit_vectors(rng, chunks),
        sentence_ptr=np.arange(0, chunks * SENTENCES_PER_CHUNK + 1, SENTENCES_PER_CHUNK, dtype=np.int64),
        sentence_spans=spans,
        sentence_questions=pool.questions[picks.reshape(-1)],
        sentence_vectors=_unit_vectors(rng, chunks * SENTENCES_PER_CHUNK),
        postings=_postings(pool, picks),
        settings=settings,
        model_name=MODEL,
        dimension=DIMENSION,
    )


def _unit_vectors(rng: np.random.Generator, count: int, block: int = 200_000) -> npt.NDArray[np.float32]:
    out = np.empty((count, DIMENSION), dtype=np.float32)
    for begin in range(0, count, block):
        sample = rng.standard_normal((min(block, count - begin), DIMENSION), dtype=np.float32)
        out[begin : begin + len(sample)] = sample / np.linalg.norm(sample, axis=1, keepdims=True)
    return out


def _postings(pool: SentencePool, picks: npt.NDArray[np.int64]) -> Postings:
    """The postings `Postings.build` would make of each chunk's sentences' terms, vectorised."""
    chunks = len(picks)
    flat = picks.reshape(-1)
    lengths = pool.term_ptr[flat + 1] - pool.term_ptr[flat]
    total = int(lengths.sum())
    offsets = np.cumsum(lengths) - lengths
    gather = np.repeat(pool.term_ptr[flat] - offsets, lengths) + np.arange(total, dtype=np.int64)
    term_ids = pool.term_ids[gather].astype(np.int64)
    chunk_lengths = lengths.reshape(chunks, SENTENCES_PER_CHUNK).sum(axis=1)
    rows = np.repeat(np.arange(chunks, dtype=np.int64), chunk_lengths)
    keys, tf = np.unique(term_ids * chunks + rows, return_counts=True)  # sorted: by term, then row
    columns, posting_rows = keys // chunks, keys % chunks
    present, per_term = np.unique(columns, return_counts=True)
    term_ptr = np.zeros(len(present) + 1, dtype=np.int64)
    np.cumsum(per_term, out=term_ptr[1:])
    return Postings(
        [pool.vocabulary[i] for i in present.tolist()],
        term_ptr,
        posting_rows.astype(np.int32),
        tf.astype(np.int32),
        chunk_lengths.astype(np.int32),
    )


def write_synthetic_index(
    root: Path, pool: SentencePool, chunks: int, say: Callable[[str], None], seed: int = 0
) -> float:
    """A new index of `chunks` synthetic chunks at `root`, in segments of up to 100k chunks,
    committed once; returns the seconds it took."""
    shutil.rmtree(root, ignore_errors=True)
    settings = IndexSettings()
    store = IndexStore(root)
    rng = np.random.default_rng(seed)
    entries = []
    started = time.perf_counter()
    with store.write_lock():
        for number, begin in enumerate(range(0, chunks, SEGMENT_CHUNKS)):
            size = min(SEGMENT_CHUNKS, chunks - begin)
            say(f"    segment {number + 1}: {size:,} chunks")
            segment = stage_segment(
                store.segments_dir, synthetic_segment(pool, size, f"fp{number:03d}", rng, settings)
            )
            publish_segment(segment)
            entries.append(SegmentEntry(segment.name, segment.document_count, segment.chunk_count))
            del segment
        store.publish(first_commit(MODEL, DIMENSION, settings).successor(tuple(entries)))
    return time.perf_counter() - started


def disk_figures(root: Path) -> dict[str, Any]:
    """Bytes of the live commit's files by kind, chunk and sentence counts, and `du` of `root`."""
    store = IndexStore(root)
    commit = store.current()
    if commit is None:
        raise RuntimeError(f"no index in {root}")
    by_kind: dict[str, int] = {}
    vector_kinds, chunks, sentences = [], 0, 0
    for entry in commit.segments:
        directory = store.segments_dir / entry.name
        meta = json.loads((directory / "meta.json").read_text("utf-8"))
        vector_kinds.append(meta["vector_index"])
        chunks += int(meta["chunks"])
        sentences += int(meta["sentences"])
        for path in directory.iterdir():
            kind = KINDS.get(path.name, "other")
            by_kind[kind] = by_kind.get(kind, 0) + path.stat().st_size
    for path in [root / "CURRENT", *(root / "commits").glob("*.json")]:
        by_kind["other"] = by_kind.get("other", 0) + path.stat().st_size
    du = subprocess.run(["du", "-sb", str(root)], capture_output=True, text=True, check=True)
    total = sum(by_kind.values())
    return {
        "segments": len(commit.segments),
        "vector_index": sorted(set(vector_kinds)),
        "documents": commit.documents,
        "chunks": chunks,
        "sentences": sentences,
        "live_bytes": total,
        "du_bytes": int(du.stdout.split()[0]),
        "bytes_per_chunk": round(total / chunks, 1),
        "bytes_per_chunk_by_kind": {kind: round(size / chunks, 1) for kind, size in sorted(by_kind.items())},
        "share_by_kind": {kind: round(size / total, 3) for kind, size in sorted(by_kind.items())},
    }


def probe_memory(root: Path, scifact: Path, queries: int) -> dict[str, Any]:
    """RSS of a fresh process opening the index at `root` and answering `queries` searches."""
    command = [sys.executable, "-m", "eval.bench.footprint_probe", str(root), str(scifact), str(queries)]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe failed: {done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def merge_memory_needed(root: Path) -> int:
    """Bytes a force-merge of the index at `root` needs at its peak, estimated: merge_segments
    copies every live vector out of its segment and concatenates the copies while they are still
    held: 2x the vectors; the IVF build copies the chunk vectors once more; plus ~2 GiB for
    documents and postings."""
    store = IndexStore(root)
    commit = store.current()
    if commit is None:
        return 0
    metas = [
        json.loads((store.segments_dir / e.name / "meta.json").read_text("utf-8")) for e in commit.segments
    ]
    chunk_bytes = sum(int(meta["chunks"]) for meta in metas) * DIMENSION * 4
    sentence_bytes = sum(int(meta["sentences"]) for meta in metas) * DIMENSION * 4
    return 2 * (chunk_bytes + sentence_bytes) + chunk_bytes + (2 << 30)


def available_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def footprint_phase(
    work: Path,
    sizes: Sequence[int],
    pool: SentencePool,
    scifact: Path,
    queries: int,
    say: Callable[[str], None],
    save: Callable[[], None],
    figures: dict[str, Any],
) -> None:
    rows: list[dict[str, Any]] = figures.setdefault("rows", [])
    figures.update(
        vectors=f"random unit vectors, float32, dimension {DIMENSION}",
        sentences_per_chunk=SENTENCES_PER_CHUNK,
        chunks_per_document=CHUNKS_PER_DOCUMENT,
        segment_chunks=SEGMENT_CHUNKS,
        queries=queries,
    )
    for size in sizes:
        root = work / "runs" / f"footprint-{size}"
        say(f"  footprint {size:,}: writing segments")
        seconds = write_synthetic_index(root, pool, size, say)
        rows.append(_measure(root, size, "as written", seconds, scifact, queries, say))
        save()
        if len(IndexStore(root).current().segments) > 1:  # type: ignore[union-attr]
            needed, available = merge_memory_needed(root), available_memory()
            if needed > 0.9 * available:
                figures.setdefault("merge_skipped", {})[str(size)] = (
                    f"force-merge not attempted: estimated peak {needed / 2**30:.1f} GiB, "
                    f"{available / 2**30:.1f} GiB available"
                )
                say(f"  footprint {size:,}: {figures['merge_skipped'][str(size)]}")
            else:
                say(f"  footprint {size:,}: force-merging (estimated peak {needed / 2**30:.1f} GiB)")
                started = time.perf_counter()
                IndexWriter(IndexStore(root), HashingEmbedder(DIMENSION), settings=IndexSettings()).merge(
                    force=True
                )
                rows.append(
                    _measure(root, size, "force-merged", time.perf_counter() - started, scifact, queries, say)
                )
                save()
        shutil.rmtree(root, ignore_errors=True)


def _measure(
    root: Path,
    size: int,
    layout: str,
    seconds: float,
    scifact: Path,
    queries: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    disk = disk_figures(root)
    say(f"  footprint {size:,} ({layout}): {disk['bytes_per_chunk']:.0f} B/chunk on disk; memory probe")
    memory = probe_memory(root, scifact, queries)
    chunks = disk["chunks"]
    # Per chunk: what opening and querying added to the process, own memory and mapped files apart.
    grown = {
        f"{kind}_{stage}": round(
            (memory[stage][f"{kind}_kb"] - memory["before"][f"{kind}_kb"]) * 1024 / chunks, 1
        )
        for kind in ("rss", "anon", "file")
        for stage in ("after_open", "after_queries")
    }
    return {
        "chunks_target": size,
        "layout": layout,
        # Writing the segments ("as written") or the force-merge ("force-merged").
        "seconds": round(seconds, 1),
        **disk,
        "memory": memory,
        "resident_growth_bytes_per_chunk": grown,
        "peak_bytes_per_chunk": round(memory["hwm_kb"] * 1024 / chunks, 1),
    }
