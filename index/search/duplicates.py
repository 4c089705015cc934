"""Near-duplicate collapse: a passage that repeats one already kept never takes a second place.

Two chunks are near-duplicates when either holds:

* they come from the same document and overlap by more than `overlap` of the shorter one's
  length (overlapping windows of one text: ``|a ∩ b| > overlap * min(|a|, |b|)`` in characters);
* their lower-cased word sets are nearly equal, from any documents (an article syndicated twice):
  Jaccard ``|W(a) ∩ W(b)| / |W(a) ∪ W(b)| >= jaccard``.

`distinct` walks a ranking best first and keeps each passage that is not a near-duplicate of one
kept before it. Out of scope: merging the duplicates' scores or citations.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator

from index.text.chunking import Chunk

_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=50_000)
def _word_set(text: str) -> frozenset[str]:
    """Lower-cased words of a chunk, cached: the same chunks are compared query after query."""
    return frozenset(_WORD.findall(text.lower()))


def near_duplicates(a: Chunk, b: Chunk, overlap: float, jaccard: float) -> bool:
    if a.document_id == b.document_id:
        shared = min(a.end, b.end) - max(a.start, b.start)
        if shared > overlap * min(a.end - a.start, b.end - b.start):
            return True
    return _word_jaccard(a.text, b.text) >= jaccard


@functools.lru_cache(maxsize=50_000)
def _word_jaccard(a: str, b: str) -> float:
    """``|W(a) ∩ W(b)| / |W(a) ∪ W(b)|`` (0 for two texts without words), cached: the same
    passages meet query after query (a chunk's text is one string object, whose hash is kept)."""
    words, other = _word_set(a), _word_set(b)
    shared = len(words & other)
    union = len(words) + len(other) - shared  # |A ∪ B| without building the union
    return shared / union if union else 0.0


def distinct(
    ranked: Iterable[tuple[int, float]], chunk_of: Callable[[int], Chunk], overlap: float, jaccard: float
) -> Iterator[tuple[int, float]]:
    """The (row, score) pairs of `ranked`, in order, without near-duplicates of earlier ones."""
    kept: list[Chunk] = []
    for row, score in ranked:
        chunk = chunk_of(row)
        if any(near_duplicates(chunk, other, overlap, jaccard) for other in kept):
            continue
        kept.append(chunk)
        yield row, score
