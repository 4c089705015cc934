"""Immutable segments: a set of documents and everything search needs for them, written once.

Layout of `segments/<name>/`::

    meta.json              counts, model, index settings, analyser version, SHA-256 of every file,
                           and its own checksum (`index.storage.files` checksummed JSON)
    ids.json               document ids, row order
    documents.jsonl        one document per line (UTF-8 JSON: metadata and its one copy of the text)
    document_offsets.npy   byte offset of each line, so a document is read without the others
    chunks.npy             (chunks, 3) int64: document row, start, end (character offsets)
    chunk_vectors.npy      (chunks, dim) float32, unit rows, memory-mapped    [exact segments]
    vectors.ivf            FAISS IVF index holding the chunk vectors instead  [approximate segments]
    sentence_ptr.npy       sentences of chunk i: rows sentence_ptr[i]:sentence_ptr[i + 1]
    sentence_spans.npy     (sentences, 2) int64 character offsets into the document
    sentence_questions.npy which sentences are themselves questions (never an answer)
    sentence_vectors.npy   (sentences, dim) float32, memory-mapped
    terms.json, term_ptr.npy, posting_rows.npy, posting_tf.npy, chunk_lengths.npy   BM25 postings

A document's chunks are consecutive rows, in text order, and documents keep their row order, so
merging segments concatenates arrays. Texts exist once (chunk and sentence texts are offsets into
the document); vectors exist once (an exact segment is scanned straight from the
memory-mapped array; an approximate one, from `approximate_threshold` chunks up, stores an IVF
index that holds the vectors and gives them back by row).

`stage_segment` writes into a staging directory, fsyncs every file and reads it back (a segment
that does not load as written is never committed); `publish_segment` renames it into place just
before the commit that lists it.
`Segment.open` checks every checksum once; after that the segment is shared by every reader of
every commit that lists it. Out of scope: which segments are live and which documents deleted
(`index.storage.store` commit points) and queries across segments (`index.search.reader`).
"""

from __future__ import annotations

import functools
import json
import mmap
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from corpus import Document
from index.embedding import Vectors
from index.errors import IndexCorruptError
from index.settings import IndexSettings
from index.storage.arrays import contenders, load_array, mapped_array
from index.storage.fields import DocumentFields, Mask
from index.storage.files import (
    checksummed_json,
    fsync_directory,
    fsync_file,
    read_checksummed_json,
    sha256_of,
    verify_file,
)
from index.storage.postings import Postings
from index.storage.vectors import build_vector_index
from index.text.analysis import ANALYSER_VERSION
from index.text.chunking import Chunk

# 3: meta.json carries its own checksum. Segments of format 2 (meta.json without one, the
# previous release's) are read as they are: they are immutable, and merges rewrite them.
SEGMENT_FORMAT = 3
UNCHECKED_SEGMENT_FORMAT = 2
# What BM25 indexes for a chunk: 1, its text (after the title); 2, also the document's author,
# source and publication date (`index.write.building.lexical_passage`). Recorded so a build re-indexes.
LEXICAL_TEXT = 2
_DOCUMENT_CACHE = 256  # parsed documents kept per segment
_CHUNK_CACHE = 4096  # chunks (passage texts) kept per segment
# An IVF segment searches a filter's rows exactly up to this many (`IvfSearch.search`).
EXACT_FILTERED_ROWS = 20_000
EXACT_BLOCK_ROWS = 65_536  # vectors read back at once by an exact search of an IVF segment
# FAISS's `reconstruct_batch` spreads more keys than this over OpenMP threads (`Index::reconstruct_batch`).
SERIAL_RECONSTRUCT_ROWS = 1_000


@dataclass(frozen=True)
class StoredDocuments:
    """Documents as a segment stores them: their ids and one JSON line each. A merge copies the
    lines of its sources as they are (never parsing them); new documents are serialised once,
    and `originals` keeps them so the written segment can be checked to read back as each."""

    ids: list[str]
    lines: list[bytes]
    originals: list[Document] | None = None

    @classmethod
    def of(cls, documents: Sequence[Document]) -> StoredDocuments:
        lines = [json.dumps(d.to_dict(), ensure_ascii=False).encode("utf-8") + b"\n" for d in documents]
        return cls([document.id for document in documents], lines, list(documents))

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class SegmentData:
    """A segment in memory, before it is written. Row i of every chunk array is chunk i."""

    documents: StoredDocuments
    chunks: npt.NDArray[np.int64]  # (chunks, 3): document row, start, end
    chunk_vectors: Vectors
    sentence_ptr: npt.NDArray[np.int64]
    sentence_spans: npt.NDArray[np.int64]
    sentence_questions: npt.NDArray[np.bool_]
    sentence_vectors: Vectors
    postings: Postings
    settings: IndexSettings
    model_name: str
    dimension: int


STAGING_PREFIX = ".tmp-"


def stage_segment(directory: Path, data: SegmentData) -> Segment:
    """Write `data` as a new segment in a staging directory under `directory` (the index's
    `segments/`), fsynced and read back; `publish_segment` then moves it into place. Staging
    needs no lock (a merge stages while writers commit): the staging name carries this process's
    id, and clean-up leaves staging directories of live processes alone."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"s-{uuid.uuid4().hex[:16]}"
    staging = directory / f"{STAGING_PREFIX}{name}-{os.getpid()}"
    staging.mkdir()
    try:
        _write_files(staging, data)
        fsync_directory(staging)
        segment = Segment.open(staging, name)
        stored = data.documents
        if (
            segment.ids != stored.ids
            or any(segment.document_line(row) != line for row, line in enumerate(stored.lines))
            or any(segment.document(row) != document for row, document in enumerate(stored.originals or []))
        ):
            raise IndexCorruptError(f"segment {staging} does not read back as written")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return segment


def publish_segment(segment: Segment) -> None:
    """Move a staged segment into place (call under the index's write lock, just before the
    commit that lists it). Its open files stay valid: a rename does not touch them."""
    final = segment.directory.parent / segment.name
    os.replace(segment.directory, final)
    fsync_directory(final.parent)
    segment.directory = final


def staging_owner(path: Path) -> int | None:
    """The process id in a staging directory's name, or None if `path` is not one."""
    if not path.name.startswith(STAGING_PREFIX):
        return None
    owner = path.name.rsplit("-", 1)[-1]
    return int(owner) if owner.isdigit() else 0


def _write_files(staging: Path, data: SegmentData) -> None:
    lines = data.documents.lines
    offsets = np.zeros(len(lines) + 1, dtype=np.int64)
    np.cumsum([len(line) for line in lines], out=offsets[1:])
    (staging / "documents.jsonl").write_bytes(b"".join(lines))
    (staging / "ids.json").write_text(json.dumps(data.documents.ids), "utf-8")
    arrays: dict[str, npt.NDArray[Any]] = {
        "document_offsets.npy": offsets,
        "chunks.npy": data.chunks,
        "sentence_ptr.npy": data.sentence_ptr,
        "sentence_spans.npy": data.sentence_spans,
        "sentence_questions.npy": data.sentence_questions,
        "sentence_vectors.npy": data.sentence_vectors,
    }
    approximate = len(data.chunks) >= data.settings.vectors.approximate_threshold
    if approximate:
        index = build_vector_index(data.chunk_vectors, data.settings.vectors)
        faiss.extract_index_ivf(index).make_direct_map()  # vectors are read back by row
        _write_faiss_index(index, staging / "vectors.ivf")
    else:
        arrays["chunk_vectors.npy"] = np.ascontiguousarray(data.chunk_vectors, dtype=np.float32)
    for file_name, array in arrays.items():
        np.save(staging / file_name, array)
    data.postings.save(staging)
    files = {p.name: sha256_of(p) for p in sorted(staging.iterdir()) if p.is_file()}
    meta = {
        "format": SEGMENT_FORMAT,
        "documents": len(data.documents),
        "chunks": len(data.chunks),
        "sentences": len(data.sentence_spans),
        "model": {"name": data.model_name, "dimension": data.dimension},
        "settings": data.settings.to_dict(),
        "analyser": ANALYSER_VERSION,
        "lexical_text": LEXICAL_TEXT,
        "vector_index": "ivf" if approximate else "flat",
        "files": files,
    }
    (staging / "meta.json").write_bytes(checksummed_json(meta))
    for path in staging.iterdir():
        fsync_file(path)


def _write_faiss_index(index: faiss.Index, path: Path) -> None:
    """`faiss.write_index` through a Python file: a full disk then raises the OSError it is
    (ENOSPC, a 507 over HTTP), where FAISS's own file writer raises a RuntimeError."""
    with open(path, "wb") as handle:
        faiss.write_index(index, faiss.PyCallbackIOWriter(handle.write))  # type: ignore[attr-defined]


class Segment:
    """A written segment, open for reading; immutable, so shared by every commit that lists it."""

    def __init__(self, directory: Path, name: str, meta: dict[str, Any]) -> None:
        self.directory = directory
        self.name = name
        self.meta = meta
        self.settings = IndexSettings.from_dict(meta["settings"])
        self.model_name = str(meta["model"]["name"])
        self.dimension = int(meta["model"]["dimension"])
        try:
            self.ids: list[str] = json.loads((directory / "ids.json").read_text("utf-8"))
            self._offsets = load_array(directory / "document_offsets.npy")
            with open(directory / "documents.jsonl", "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                # Mapped now, so the texts stay readable even after a later clean-up unlinks the file.
                self._texts = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
            self.chunks = mapped_array(directory / "chunks.npy")
            self.sentence_ptr = mapped_array(directory / "sentence_ptr.npy")
            self.sentence_spans = mapped_array(directory / "sentence_spans.npy")
            self.sentence_questions = mapped_array(directory / "sentence_questions.npy")
            self.sentence_vectors = mapped_array(directory / "sentence_vectors.npy")
            self.postings = Postings.load(directory)
            self.vectors: FlatVectors | IvfVectors = (
                IvfVectors(
                    faiss.read_index(
                        str(directory / "vectors.ivf"), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY
                    )
                )
                if meta["vector_index"] == "ivf"
                else FlatVectors(mapped_array(directory / "chunk_vectors.npy"))
            )
        except (OSError, ValueError, KeyError, RuntimeError) as error:
            raise IndexCorruptError(f"cannot read segment {directory}: {error}") from error
        first_chunk = (
            np.searchsorted(self.chunks[:, 0], np.arange(len(self.ids) + 1)) if len(self.chunks) else None
        )
        self.chunk_ptr = (
            first_chunk.astype(np.int64)
            if first_chunk is not None
            else np.zeros(len(self.ids) + 1, dtype=np.int64)
        )
        self._document = functools.lru_cache(maxsize=_DOCUMENT_CACHE)(self._read_document)
        # A search looks at a passage in several stages (duplicates, answers, hits): one Chunk each.
        self._chunk = functools.lru_cache(maxsize=_CHUNK_CACHE)(self._make_chunk)

    @classmethod
    def open(cls, directory: Path, name: str | None = None) -> Segment:
        """Open a segment, verifying every file against the checksum its meta.json records."""
        meta = _read_meta(directory)
        for file_name, expected in meta["files"].items():
            verify_file(directory / file_name, str(expected))
        return cls(directory, name or directory.name, meta)

    @property
    def document_count(self) -> int:
        return len(self.ids)

    @property
    def chunk_count(self) -> int:
        return len(self.chunks)

    @functools.cached_property
    def row_of(self) -> dict[str, int]:
        return {document_id: row for row, document_id in enumerate(self.ids)}

    def document(self, row: int) -> Document:
        return self._document(row)

    def _read_document(self, row: int) -> Document:
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        return Document.from_stored(json.loads(bytes(self._texts[start:end]).decode("utf-8")))

    def document_line(self, row: int) -> bytes:
        """The stored line of document `row`, as written (merges copy it without parsing)."""
        return bytes(self._texts[int(self._offsets[row]) : int(self._offsets[row + 1])])

    @functools.cached_property
    def fields(self) -> DocumentFields:
        """The documents' fields as columns, for filters (read from documents.jsonl on first use)."""
        rows = range(self.document_count)
        return DocumentFields.of_lines((self.document_line(row) for row in rows), self.document_count)

    def chunk(self, row: int) -> Chunk:
        return self._chunk(row)

    def _make_chunk(self, row: int) -> Chunk:
        document_row, start, end = (int(value) for value in self.chunks[row])
        document = self.document(document_row)
        return Chunk(f"{document.id}#{start}-{end}", document.id, start, end, document.text[start:end])

    def chunk_vectors(self, rows: Sequence[int] | npt.NDArray[np.int64]) -> Vectors:
        return self.vectors.rows(np.asarray(rows, dtype=np.int64))

    def all_chunk_vectors(self) -> Vectors:
        return self.vectors.rows(np.arange(self.chunk_count, dtype=np.int64))


def read_ids(directory: Path) -> list[str]:
    """A segment's document ids, in row order, checked against its meta.json: what a damaged
    segment still says it held, when the rest of it does not verify."""
    meta = _read_meta(directory)
    path = directory / "ids.json"
    verify_file(path, str(meta["files"].get("ids.json")))
    ids: list[str] = json.loads(path.read_text("utf-8"))
    return ids


def _read_meta(directory: Path) -> dict[str, Any]:
    meta = read_checksummed_json(
        directory / "meta.json", f"segment {directory}", unchecked_format=UNCHECKED_SEGMENT_FORMAT
    )
    if meta.get("format") not in (SEGMENT_FORMAT, UNCHECKED_SEGMENT_FORMAT):
        raise IndexCorruptError(f"segment {directory} has format {meta.get('format')}, not {SEGMENT_FORMAT}")
    if not isinstance(meta.get("files"), dict):
        raise IndexCorruptError(f"segment {directory} is damaged (its meta.json lists no files)")
    return meta


class FlatVectors:
    """An exact segment's vectors: a memory-mapped array, scanned whole by each query."""

    def __init__(self, vectors: Vectors) -> None:
        self.vectors = np.ascontiguousarray(vectors)  # the scan reads it by pointer

    def rows(self, rows: npt.NDArray[np.int64]) -> Vectors:
        return np.asarray(self.vectors[rows], dtype=np.float32)

    def inner_products(self, query: Vectors, out: npt.NDArray[np.float32]) -> None:
        """``query . v`` for every vector `v`, written into `out` (contiguous float32, one per
        row). FAISS's own loop, not a BLAS product: it releases the GIL and takes no lock, so
        concurrent requests scan side by side (numpy's OpenBLAS call serialised them: a third of
        the throughput at 32 concurrent requests)."""
        if len(self.vectors) == 0:
            return
        faiss.fvec_inner_products_ny(  # type: ignore[attr-defined]
            faiss.swig_ptr(out),
            faiss.swig_ptr(np.ascontiguousarray(query, dtype=np.float32)),
            faiss.swig_ptr(self.vectors),
            self.vectors.shape[1],
            len(self.vectors),
        )

    def inner_products_of(self, rows: npt.NDArray[np.int64], query: Vectors) -> npt.NDArray[np.float32]:
        """``query . v`` for the vectors of `rows` only, by the same kernel as `inner_products`
        (so a filtered search gives the very scores an unfiltered one does)."""
        gathered = np.ascontiguousarray(self.vectors[rows], dtype=np.float32)
        out = np.empty(len(rows), dtype=np.float32)
        FlatVectors(gathered).inner_products(query, out)
        return out


class IvfVectors:
    """An approximate segment's vectors: a FAISS IVF index, which also gives them back by row."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = index
        ivf = faiss.extract_index_ivf(index)
        lists = None if ivf.invlists is None else faiss.downcast_InvertedLists(ivf.invlists)
        if isinstance(lists, faiss.OnDiskInvertedLists):  # how a mapped segment's cells are read
            # FAISS's default starts up to 32 threads per search to touch the probed cells' pages
            # ahead of the scan: with the cells in the page cache that took a 100k-vector segment's
            # search (32 cells) from 0.58 to 2.1 ms, most of it creating threads.
            lists.prefetch_nthread = 0
        self.lists = int(ivf.nlist)
        self.probes = int(ivf.nprobe)  # as built: what a search of this segment alone scans
        self.count = int(index.ntotal)  # vectors, one per chunk row

    def rows(self, rows: npt.NDArray[np.int64]) -> Vectors:
        return np.asarray(self.index.reconstruct_batch(rows), dtype=np.float32)

    def rows_in_this_thread(self, rows: npt.NDArray[np.int64]) -> Vectors:
        """`rows` read back on the calling thread alone, `SERIAL_RECONSTRUCT_ROWS` at a time, each
        piece straight into the result: spread over OpenMP threads, a query's read-back of 10k
        rows took 7.9 ms on two busy cores against 1.5 ms on one thread (`reconstruct_batch`)."""
        out = np.empty((len(rows), self.index.d), dtype=np.float32)
        for start in range(0, len(rows), SERIAL_RECONSTRUCT_ROWS):
            piece = np.ascontiguousarray(rows[start : start + SERIAL_RECONSTRUCT_ROWS], dtype=np.int64)
            self.index.reconstruct_batch(piece, out[start : start + len(piece)])
        return out

    def prepared(self, deleted: npt.NDArray[np.int64], probes: int | None = None) -> IvfSearch:
        """A search of this segment as one commit reads it: rows `deleted` left out, `probes`
        cells scanned (default: the segment's own)."""
        return IvfSearch(self, deleted, self.probes if probes is None else probes)

    def search(
        self, query: Vectors, limit: int, deleted: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Rows and cosines of (about, it is approximate) the `limit` vectors nearest `query`,
        rows `deleted` left out, in no particular order: the reader orders every segment's
        candidates once."""
        return self.prepared(deleted).search(query, limit)


class IvfSearch:
    """The search parameters of one IVF segment in one commit, made once per reader rather than
    per query: the cells to probe and the selector leaving out deleted rows (built from every
    deleted row, so per query it cost time in the number of deletes)."""

    def __init__(self, vectors: IvfVectors, deleted: npt.NDArray[np.int64], probes: int) -> None:
        self.vectors = vectors
        self.probes = probes
        # FAISS only points to the selectors: they are held here for as long as the parameters.
        self._excluded = faiss.IDSelectorBatch(deleted) if len(deleted) else None
        self._selector = faiss.IDSelectorNot(self._excluded) if self._excluded is not None else None
        self.parameters = faiss.SearchParametersIVF(  # type: ignore[call-arg]
            nprobe=probes, **({"sel": self._selector} if self._selector is not None else {})
        )

    def search(
        self, query: Vectors, limit: int, allowed: Mask | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Rows and cosines of (about) the `limit` vectors nearest `query` among the live rows,
        in no particular order; with `allowed` (a mask over the segment's rows, deleted rows
        already out), among the allowed rows only, and never fewer than `limit` when as many
        are allowed.

        A filter's rows are searched exactly when they are few (`EXACT_FILTERED_ROWS`): the
        probed cells may hold none of them. Otherwise the IVF search skips the others (FAISS's
        `IDSelectorBitmap`), and if the probed cells held fewer than `limit` allowed rows, the
        allowed rows are searched exactly."""
        if limit <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if allowed is None:
            scores, rows = self.vectors.index.search(query, limit, params=self.parameters)
            found = rows[0] >= 0
            return rows[0][found].astype(np.int64), scores[0][found].astype(np.float32)
        allowed_rows = np.flatnonzero(allowed).astype(np.int64)
        if len(allowed_rows) <= EXACT_FILTERED_ROWS:
            return self._exact(query.reshape(-1), allowed_rows, limit)
        bitmap = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        parameters = faiss.SearchParametersIVF(nprobe=self.probes, sel=selector)  # type: ignore[call-arg]
        scores, rows = self.vectors.index.search(query, limit, params=parameters)
        found = rows[0] >= 0
        if int(found.sum()) < min(limit, len(allowed_rows)):
            return self._exact(query.reshape(-1), allowed_rows, limit)
        return rows[0][found].astype(np.int64), scores[0][found].astype(np.float32)

    def _exact(
        self, query: Vectors, rows: npt.NDArray[np.int64], limit: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The `limit` best of `rows` by exact cosine, vectors read back a block at a time, all on
        the calling thread (`IvfVectors.rows_in_this_thread`), cosines by FAISS's loop
        (`FlatVectors.inner_products`): the very scores the IVF scan gives these rows, where
        numpy's product differed in the last bit for half of them, and no OpenBLAS threads (10k
        rows: 0.5 ms, against 0.3 to 8 ms for numpy's on two busy cores)."""
        cosines = np.empty(len(rows), dtype=np.float32)
        for start in range(0, len(rows), EXACT_BLOCK_ROWS):
            block = rows[start : start + EXACT_BLOCK_ROWS]
            vectors = FlatVectors(self.vectors.rows_in_this_thread(block))
            vectors.inner_products(query, cosines[start : start + len(block)])
        best = contenders(cosines, limit)
        return rows[best], cosines[best]
