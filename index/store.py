"""The index on disk: self-describing generations, switched in atomically.

Layout of an index directory::

    CURRENT                    name of the live generation (replaced by rename)
    generations/<version>/     manifest.json, documents.jsonl, chunks.jsonl,
                               chunk_vectors.npy, sentences.npz, faiss.index, bm25/
    .write.lock                serialises writers across processes

A generation is written into a temporary directory, every file is fsynced, the directory is
renamed into place and only then is CURRENT replaced (write, fsync, rename, fsync the parent).
A crash at any point leaves CURRENT naming a complete generation. Loading verifies every file
against the SHA-256 recorded in the manifest and the model against the configured one.

Clean-up after a commit keeps the new generation and the one it replaced (a reader that has just
read the old CURRENT can still load it) and deletes everything else, including staging
directories left by a crashed writer. A reader that still loses the race (two more commits while
it reads) sees CURRENT move and simply loads again. Out of scope: choosing what to write (see
`index.updates`) and serialising writers, which callers do with `write_lock()`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from filelock import FileLock

from corpus import Document
from index.building import IndexData, IndexSettings, corpus_fingerprint, question_sentences
from index.chunking import Chunk
from index.errors import DamagedIndexError, IndexCorruptError, IndexMismatchError, IndexNotFoundError
from index.lexical import LexicalIndex
from index.vectors import vector_index_kind

INDEX_FORMAT = 1
LOAD_ATTEMPTS = 5


@dataclass(frozen=True)
class LoadedIndex:
    data: IndexData
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.manifest["index_version"])


class IndexStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.generations = self.root / "generations"

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / ".write.lock")):
            yield

    def current_version(self) -> str | None:
        """The live generation's name; None only when there is truly no index here.

        CURRENT is replaced by rename, so it is never seen empty or half-written; a CURRENT that is
        empty, or missing while complete generations exist, means the directory was damaged (or
        edited by hand), and starting a new index over it would discard what it holds."""
        try:
            name = (self.root / "CURRENT").read_text("utf-8").strip()
        except FileNotFoundError:
            if self.generation_names():
                raise DamagedIndexError(
                    self.root, f"{self.root / 'CURRENT'} is missing but {self.generations} holds generations"
                ) from None
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise DamagedIndexError(self.root, f"cannot read {self.root / 'CURRENT'}: {error}") from error
        if not name:
            raise DamagedIndexError(self.root, f"{self.root / 'CURRENT'} is empty")
        return name

    def read_manifest(self, version: str | None = None) -> dict[str, Any]:
        version = version or self.current_version()
        if version is None:
            raise IndexNotFoundError(f"no index in {self.root}: run `rag build` first")
        path = self.generations / version / "manifest.json"
        try:
            manifest: dict[str, Any] = json.loads(path.read_text("utf-8"))
        except FileNotFoundError as error:
            raise IndexCorruptError(f"{path} is missing") from error
        except json.JSONDecodeError as error:
            raise IndexCorruptError(f"{path} is damaged ({error.msg})") from error
        return manifest

    def load(self, model_name: str | None = None, dimension: int | None = None) -> LoadedIndex:
        """The live generation, checked against the configured model and its checksums.

        If a writer in another process switched CURRENT and cleaned up the generation being read
        meanwhile, the read fails; it is retried on the new CURRENT, so only real damage raises.
        """
        try:
            for _ in range(LOAD_ATTEMPTS - 1):
                version = self.current_version()
                try:
                    return self._load_version(version, model_name, dimension)
                except IndexCorruptError:
                    if self.current_version() == version:
                        raise
            return self._load_version(self.current_version(), model_name, dimension)
        except DamagedIndexError:
            raise
        except IndexCorruptError as error:
            raise DamagedIndexError(self.root, error) from error

    def _load_version(
        self, version: str | None, model_name: str | None, dimension: int | None
    ) -> LoadedIndex:
        manifest = self.read_manifest(version)
        directory = self.generations / str(manifest["index_version"])
        if manifest.get("format") != INDEX_FORMAT:
            raise IndexMismatchError(
                f"index format {manifest.get('format')} in {directory}, expected {INDEX_FORMAT}: "
                "rebuild with `rag build`"
            )
        model = manifest["model"]
        if (model_name and model["name"] != model_name) or (dimension and model["dimension"] != dimension):
            raise IndexMismatchError(
                f"index in {self.root} was built with model {model['name']!r} "
                f"({model['dimension']} dims) but {model_name!r} ({dimension} dims) is configured: "
                "rebuild with `rag build` or configure the index's model"
            )
        for name, expected in manifest["files"].items():
            _verify_checksum(directory / name, expected)
        return LoadedIndex(_read_data(directory, manifest), manifest)

    def commit(
        self,
        data: IndexData,
        built_from: str | None,
    ) -> LoadedIndex:
        """Write `data` as a new generation and make it live. Call under `write_lock`.

        Everything is on disk (fsynced) when this returns, so the caller may acknowledge the
        change.
        """
        replaced = self.current_version()
        self.generations.mkdir(parents=True, exist_ok=True)
        created = datetime.now(UTC)
        fingerprint = corpus_fingerprint(list(data.documents.values()))
        version = f"{created:%Y%m%dT%H%M%S%fZ}-{fingerprint[:8]}"
        staging = self.generations / f".tmp-{uuid.uuid4().hex}"
        staging.mkdir()
        files = _write_data(staging, data)
        _verify_read_back(staging, data)
        manifest = {
            "format": INDEX_FORMAT,
            "index_version": version,
            "created_at": created.isoformat(),
            "model": {"name": data.model_name, "dimension": data.dimension},
            "settings": data.settings.to_dict(),
            "corpus_fingerprint": fingerprint,
            "built_from": built_from,
            "documents": len(data.documents),
            "chunks": len(data.chunks),
            "sentences": len(data.sentence_spans),
            "vector_index": vector_index_kind(data.vector_index),
            "files": files,
        }
        _write_file(staging / "manifest.json", json.dumps(manifest, indent=2).encode())
        _fsync_directory(staging)
        os.replace(staging, self.generations / version)
        _fsync_directory(self.generations)
        self._switch_current(version)
        self._remove_old_generations(keep={version, replaced})
        return LoadedIndex(data, manifest)

    def _switch_current(self, version: str) -> None:
        """Make the complete generation `version` the live one: the commit's one atomic step."""
        _write_file(self.root / "CURRENT.tmp", version.encode())
        os.replace(self.root / "CURRENT.tmp", self.root / "CURRENT")
        _fsync_directory(self.root)

    def generation_names(self) -> list[str]:
        """Complete generations on disk (staging directories excluded)."""
        if not self.generations.is_dir():
            return []
        return sorted(p.name for p in self.generations.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _remove_old_generations(self, keep: set[str | None]) -> None:
        # Re-read CURRENT: whatever it names is never deleted, even if the caller's idea is stale.
        keep = {*keep, self.current_version()}
        for path in self.generations.iterdir():
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)


def _write_data(directory: Path, data: IndexData) -> dict[str, str]:
    documents = "".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in data.documents.values())
    chunks = "".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in data.chunks)
    _write_file(directory / "documents.jsonl", documents.encode())
    _write_file(directory / "chunks.jsonl", chunks.encode())
    with open(directory / "chunk_vectors.npy", "wb") as handle:
        np.save(handle, data.chunk_vectors)
        _flush(handle)
    with open(directory / "sentences.npz", "wb") as handle:
        np.savez(
            handle,
            ptr=data.sentence_ptr,
            spans=data.sentence_spans,
            vectors=data.sentence_vectors,
            questions=data.sentence_is_question,
        )
        _flush(handle)
    faiss.write_index(data.vector_index, str(directory / "faiss.index"))
    data.lexical.save(directory / "bm25")
    checksums: dict[str, str] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        _fsync_file(path)
        checksums[str(path.relative_to(directory))] = _sha256(path)
    _fsync_directory(directory / "bm25")
    return checksums


def _read_data(directory: Path, manifest: dict[str, Any]) -> IndexData:
    try:
        documents = [Document.from_dict(json.loads(line)) for line in _lines(directory / "documents.jsonl")]
        chunks = [Chunk(**json.loads(line)) for line in _lines(directory / "chunks.jsonl")]
        chunk_vectors = np.load(directory / "chunk_vectors.npy")
        with np.load(directory / "sentences.npz") as sentences:
            ptr, spans, sentence_vectors = sentences["ptr"], sentences["spans"], sentences["vectors"]
            questions = sentences["questions"] if "questions" in sentences.files else None
        vector_index = faiss.read_index(str(directory / "faiss.index"))
        lexical = LexicalIndex.load(directory / "bm25")
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise IndexCorruptError(f"cannot read index {directory}: {error}") from error
    by_id = {d.id: d for d in documents}
    if questions is None:  # a generation written before the mask was stored
        questions = question_sentences(by_id, chunks, ptr, spans)
    return IndexData(
        documents=by_id,
        chunks=chunks,
        chunk_vectors=chunk_vectors,
        sentence_ptr=ptr,
        sentence_spans=spans,
        sentence_vectors=sentence_vectors,
        sentence_is_question=questions,
        lexical=lexical,
        vector_index=vector_index,
        settings=IndexSettings.from_dict(manifest["settings"]),
        model_name=manifest["model"]["name"],
        dimension=int(manifest["model"]["dimension"]),
    )


def _lines(path: Path) -> list[str]:
    # Split on "\n" only: JSON escapes it inside strings, but not U+0085, U+2028 or U+2029, which
    # `str.splitlines` would also treat as line breaks, cutting a document's line in two.
    return [line for line in path.read_text("utf-8").split("\n") if line]


def _verify_read_back(directory: Path, data: IndexData) -> None:
    """Refuse to commit a generation whose documents or chunks do not read back exactly as they
    were given, so a format defect fails the write instead of the next process's load."""
    documents = [Document.from_dict(json.loads(line)) for line in _lines(directory / "documents.jsonl")]
    chunks = [Chunk(**json.loads(line)) for line in _lines(directory / "chunks.jsonl")]
    if documents != list(data.documents.values()) or chunks != data.chunks:
        raise IndexCorruptError(f"the new generation in {directory} does not read back as written")


def _verify_checksum(path: Path, expected: str) -> None:
    if not path.is_file():
        raise IndexCorruptError(f"index file {path} is missing")
    if _sha256(path) != expected:
        raise IndexCorruptError(f"index file {path} is damaged (checksum mismatch)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_file(path: Path, payload: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(payload)
        _flush(handle)


def _flush(handle: Any) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
