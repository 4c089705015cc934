"""`rag add PATHS` at scale: files read one by one, documents committed in batches, a progress bar.

In scope: reading the files under PATHS (`read_files`: as `rag build` finds them, corpus/loading.py),
where a file that cannot be read (a refused date, bad UTF-8, a duplicate id, a broken JSONL line)
is set aside with its reason instead of stopping the others; committing the documents
`BATCH_DOCUMENTS` at a time (`add_in_batches`: one commit and one segment per batch, through
the engine's group commit, as the bulk ingest jobs do), with a tqdm progress bar on stderr when
it is a terminal; and the lines that report it (`summary_line`, `refused_lines`). A batch that
fails (a full disk, a damaged index) stops the command; the batches before it stay committed.
Out of scope: the command itself (service/cli.py) and the server's jobs (service/jobs/).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from corpus import CorpusError, Document, load_documents_file
from corpus.loading import corpus_files
from service.engine import Engine

BATCH_DOCUMENTS = 500


@dataclass
class Added:
    """What the batches did, summed."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    version: str = ""
    documents: int = 0  # in the index after the last batch


@dataclass
class Read:
    documents: list[Document] = field(default_factory=list)
    files: int = 0
    refused: list[tuple[Path, str]] = field(default_factory=list)  # file, why


def read_files(paths: Iterable[Path]) -> Read:
    """Every document under `paths`; a file that cannot be read is refused, with its reason.
    CorpusError for a path that does not exist or a named file of an unsupported type."""
    read = Read()
    seen: dict[str, Path] = {}
    for path in corpus_files(paths):
        read.files += 1
        try:
            documents = load_documents_file(path)
            for document in documents:
                if document.id in seen:
                    raise CorpusError(
                        f"duplicate document id {document.id!r} (first seen in {seen[document.id]})"
                    )
        except (CorpusError, OSError) as error:
            read.refused.append((path, str(error)))
            continue
        seen.update((document.id, path) for document in documents)
        read.documents += documents
    return read


def add_in_batches(engine: Engine, documents: Sequence[Document], batch: int | None = None) -> Added:
    """Upsert `documents`, one commit per `batch` (`BATCH_DOCUMENTS`) of them, showing progress
    on a terminal."""
    batch = batch or BATCH_DOCUMENTS
    added = Added()
    with tqdm(
        total=len(documents), unit="doc", desc="adding", file=sys.stderr, disable=not sys.stderr.isatty()
    ) as bar:
        for start in range(0, len(documents), batch):
            result = engine.upsert(documents[start : start + batch])
            added.added += len(result.added)
            added.replaced += len(result.replaced)
            added.unchanged += len(result.unchanged)
            added.version, added.documents = result.reader.version, result.reader.document_count
            bar.update(min(batch, len(documents) - start))
    return added


def summary_line(added: Added, what: str) -> str:
    if not added.added and not added.replaced:
        return f"index {added.version} unchanged ({what}, all already indexed as given)"
    return (
        f"index {added.version}: added {added.added}, replaced {added.replaced}, removed 0; "
        f"{added.documents} documents ({what})"
    )


def refused_lines(read: Read) -> list[str]:
    """The refused files and why, one a line, after a heading line."""
    lines = [f"{len(read.refused)} of {read.files} file(s) refused, nothing of them was added:"]
    for path, reason in read.refused:
        lines.append(f"  {reason}" if reason.startswith((path.name, str(path))) else f"  {path}: {reason}")
    return lines
