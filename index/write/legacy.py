"""Reading an index in the earlier single-generation format, to convert it (`rag build`).

That format kept the whole index in one directory per generation (`generations/<version>/`:
documents.jsonl, chunks.jsonl, chunk_vectors.npy, sentences.npz, a manifest with checksums) and
named the live one in CURRENT. `LegacyIndex` reads its documents and the vectors it embedded (by
text key), so the conversion keeps every document, those added over HTTP included, and embeds
nothing again. Out of scope: writing that format, or serving from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from corpus import Document
from index.errors import DamagedIndexError, IndexCorruptError
from index.settings import IndexSettings, SentenceVectors
from index.storage.commits import Current
from index.storage.files import read_json, verify_file
from index.text.chunking import Chunk
from index.write.building import embedded_passage, span_key, text_key


class LegacyIndex:
    def __init__(self, root: Path, directory: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.directory = directory
        self.manifest = manifest
        self.model_name = str(manifest["model"]["name"])
        self.settings = IndexSettings.from_dict(manifest.get("settings", {}))

    @classmethod
    def find(cls, root: Path) -> LegacyIndex | None:
        """The live generation of an index in the earlier format under `root`, if there is one."""
        current = root / "CURRENT"
        if not (root / "generations").is_dir() or not current.is_file():
            return None
        try:
            pointer = Current.parse(current.read_text("utf-8"))
        except (OSError, UnicodeDecodeError):
            pointer = None
        if pointer is None or pointer.name.endswith(".json"):  # converted, or damaged: not this format
            return None
        directory = root / "generations" / pointer.name
        try:
            manifest = read_json(directory / "manifest.json", f"the manifest of {directory}")
            for file_name, expected in manifest["files"].items():
                verify_file(directory / file_name, str(expected))
        except (IndexCorruptError, KeyError, AttributeError) as error:
            raise DamagedIndexError(
                root, f"cannot read the earlier-format index {directory}: {error}"
            ) from error
        return cls(root, directory, manifest)

    def documents(self) -> Iterator[Document]:
        for line in _lines(self.directory / "documents.jsonl"):
            yield Document.from_dict(json.loads(line))

    def known_vectors(self) -> dict[str, npt.NDArray[np.float32]]:
        """Text key -> vector for every passage and sentence the generation embedded."""
        documents = {document.id: document for document in self.documents()}
        chunks = [Chunk(**json.loads(line)) for line in _lines(self.directory / "chunks.jsonl")]
        chunk_vectors = np.load(self.directory / "chunk_vectors.npy")
        with np.load(self.directory / "sentences.npz") as sentences:
            pointer, spans, sentence_vectors = sentences["ptr"], sentences["spans"], sentences["vectors"]
        contextual = self.settings.sentence_vectors == SentenceVectors.CONTEXTUAL
        known: dict[str, npt.NDArray[np.float32]] = {}
        for row, chunk in enumerate(chunks):
            passage = embedded_passage(chunk, documents[chunk.document_id], self.settings)
            known[text_key(passage)] = chunk_vectors[row]
            shift = passage.rfind(chunk.text)
            for sentence_row in range(int(pointer[row]), int(pointer[row + 1])):
                start, end = (int(v) - chunk.start + shift for v in spans[sentence_row])
                key = span_key(passage, start, end) if contextual else text_key(passage[start:end])
                known[key] = sentence_vectors[sentence_row]
        return known


def _lines(path: Path) -> list[str]:
    # "\n" only: U+0085, U+2028 and U+2029 may stand inside a document's line.
    return [line for line in path.read_text("utf-8").split("\n") if line]
