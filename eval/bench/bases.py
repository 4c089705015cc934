"""Base indexes for the write and ingest benchmarks: built once, kept, and served from a copy.

In scope: `cached_base_index` builds `documents` with `IndexWriter` in this process (the fast
path: no HTTP, segments of the writer's usual size, then the merges the policy asks for, as
`rag build` does) under the work directory, keyed by a
fingerprint of the documents, the settings, the embedder and the index formats, so a re-run finds
it and builds nothing; `working_copy` gives a server a copy to write into; `empty_index` makes
a fresh index holding no documents (a server needs a commit to start on).

The copy is made of hard links, which is safe because the index never changes a file in place:
segments are immutable, and CURRENT, commit points and deletes files are written under a new
name and renamed (a rename replaces the link, not the shared inode); clean-up only unlinks.
The lock file is left out (a lock opens its file for writing). Left out: evicting old caches
(delete `<work>/bases` by hand).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from corpus import Document
from index.embedding import Embedder
from index.errors import IndexError_
from index.settings import IndexSettings
from index.storage.commits import INDEX_FORMAT
from index.storage.segments import SEGMENT_FORMAT
from index.storage.store import IndexStore
from index.text.analysis import ANALYSER_VERSION
from index.write.building import corpus_fingerprint, settings_fingerprint
from index.write.writer import IndexWriter

COMPLETE = "BENCH-COMPLETE"  # written last: a build cut short is never taken for a cached one


def cached_base_index(
    work: Path, name: str, documents: Sequence[Document], embedder: Embedder, settings: IndexSettings
) -> tuple[Path, float | None]:
    """The index of `documents` under `work/bases`, and the seconds it took to build (None when
    it was found already built)."""
    key = hashlib.sha256(
        "\0".join(
            [
                corpus_fingerprint(documents),
                settings_fingerprint(settings, embedder.model_name, embedder.dimension),
                str(ANALYSER_VERSION),
                str(SEGMENT_FORMAT),
                str(INDEX_FORMAT),
            ]
        ).encode()
    ).hexdigest()[:12]
    root = work / "bases" / f"{name}-{len(documents)}-{key}"
    writer = IndexWriter(IndexStore(root), embedder, settings=settings)
    if (root / COMPLETE).is_file():
        try:
            if IndexStore(root).current() is not None:
                writer.merge()  # a no-op once merged; bases cached before merging was done here
                return root, None
        except IndexError_:
            pass  # damaged: built again below
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    writer.sync(documents, exact=True)
    writer.merge()  # as `rag build` leaves it: the merges the policy asks for done
    seconds = time.perf_counter() - started
    (root / COMPLETE).write_text(f"{len(documents)} documents built in {seconds:.1f} s\n", "utf-8")
    return root, seconds


def working_copy(base: Path, target: Path) -> Path:
    """A hard-linked copy of the index `base` at `target` (replacing whatever is there)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(
        base, target, copy_function=os.link, ignore=shutil.ignore_patterns(".write.lock", COMPLETE)
    )
    return target


def empty_index(root: Path, embedder: Embedder, settings: IndexSettings) -> Path:
    """A fresh index at `root` (replacing whatever is there) with a commit of no documents and
    no segments. There is no empty first commit, so one placeholder document is added and
    removed again; the live commit is the removal's, two generations on."""
    shutil.rmtree(root, ignore_errors=True)
    writer = IndexWriter(IndexStore(root), embedder, settings=settings)
    placeholder = Document(id="empty-index-placeholder", text="A placeholder, removed at once.")
    writer.upsert([placeholder])
    writer.delete([placeholder.id])
    return root
