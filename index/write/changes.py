"""What a write changes: the changes a group commit applies (`Upsert`, `Delete`), how each resolves
against the index as the changes before it leave it, their results, and what a build from files
changes (`build_target`).

In scope: deciding, per change, which documents are added, replaced, unchanged or removed, and
which ids are missing. Out of scope: writing anything (`index.write.writer` commits the resolved
group as one segment and one commit point).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from corpus import Document
from index.search.reader import IndexReader


class MissingDocumentsError(LookupError):
    """Asked to remove documents the index does not hold; nothing was changed."""

    def __init__(self, document_ids: Sequence[str]) -> None:
        super().__init__(f"no document with id {', '.join(repr(i) for i in document_ids)}")
        self.document_ids = list(document_ids)


@dataclass(frozen=True)
class WriteResult:
    reader: IndexReader
    changed: bool
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # a build: documents left as other writers made them
    reindexed: str = ""  # a build that re-indexed every document: why (empty: it did not)


@dataclass(frozen=True)
class Upsert:
    """Add or replace these documents by id."""

    documents: tuple[Document, ...]


@dataclass(frozen=True)
class Delete:
    """Remove the documents with these ids (all of them, or none: MissingDocumentsError)."""

    document_ids: tuple[str, ...]


Change = Upsert | Delete
# A change's result once the commit holding it is open: its outcome given that commit's reader.
Outcome = Callable[[IndexReader], WriteResult] | MissingDocumentsError


def upsert_outcome(
    change: Upsert, current: Callable[[str], Document | None], after: dict[str, Document | None]
) -> Outcome:
    """Classify `change`'s documents against the index as the changes before it leave it, and
    record the ones it adds or replaces in `after`."""
    added: list[str] = []
    replaced: list[str] = []
    unchanged: list[str] = []
    for document in {d.id: d for d in change.documents}.values():  # the last of an id repeated
        existing = current(document.id)
        if existing is not None and same_content(existing, document):
            unchanged.append(document.id)
            continue
        (added if existing is None else replaced).append(document.id)
        after[document.id] = document
    changed = bool(added or replaced)
    added, replaced, unchanged = sorted(added), sorted(replaced), sorted(unchanged)
    return lambda reader: WriteResult(reader, changed, added, replaced, [], unchanged)


def delete_outcome(
    change: Delete, current: Callable[[str], Document | None], after: dict[str, Document | None]
) -> Outcome:
    missing = [i for i in change.document_ids if current(i) is None]
    if missing:
        return MissingDocumentsError(missing)
    for document_id in change.document_ids:
        after[document_id] = None
    removed = sorted(set(change.document_ids))
    return lambda reader: WriteResult(reader, True, removed=removed)


def same_content(document: Document | None, other: Document | None) -> bool:
    if document is None or other is None:
        return document is other
    return document.content_hash == other.content_hash


def raised(outcome: WriteResult | MissingDocumentsError) -> WriteResult:
    if isinstance(outcome, MissingDocumentsError):
        raise outcome
    return outcome


def build_target(
    before: dict[str, Document], files: dict[str, Document], previous: dict[str, str], exact: bool
) -> tuple[dict[str, Document], list[str]]:
    """What the index holds after a build, and the documents kept as other writers left them."""
    if exact:
        return dict(files), []
    after = dict(before)
    for document_id, document in files.items():
        if previous.get(document_id) != document.content_hash:  # new or changed in the files
            after[document_id] = document
    kept = []
    for document_id, content in previous.items():
        if document_id not in files and document_id in after:
            if after[document_id].content_hash == content:
                del after[document_id]  # its file is gone, and nobody changed it since
            else:
                kept.append(document_id)
    kept += [i for i in after if i not in files and i not in previous]
    kept += [i for i in files if i in after and after[i].content_hash != files[i].content_hash]
    return after, sorted(set(kept))
