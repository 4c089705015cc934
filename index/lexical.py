"""BM25 over chunks with bm25s and a Snowball English stemmer (PyStemmer).

Scores come from `get_scores` over the whole matrix and the top n are selected with numpy, which
keeps unknown query words harmless and stays fast at a million chunks. Matched terms are the
query's own words whose stem occurs in the chunk, so an explanation reads "pipelin" as "pipeline".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import numpy.typing as npt
import Stemmer

_STEMMER = Stemmer.Stemmer("english")
# Runs of two or more word characters: the same tokens as bm25s's default r"(?u)\b\w\w+\b" (a
# greedy run always ends on a boundary), found ~25% faster.
_WORD = re.compile(r"\w\w+")


STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN)


def stem_tokens(texts: Sequence[str]) -> list[list[str]]:
    """The tokens `bm25s.tokenize(texts, stopwords="en", stemmer=...)` gives (lower-cased words
    of two or more characters, English stop words dropped, Snowball-stemmed), computed directly:
    bm25s builds progress bars and vocabularies on every call, which cost ~1 ms per query."""
    return [
        _STEMMER.stemWords([w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]) for text in texts
    ]


@functools.lru_cache(maxsize=50_000)
def stem_set(text: str) -> frozenset[str]:
    """The stems of `text` as a set, cached: each query looks again at the sentences of the
    chunks it hits, and popular chunks come back query after query."""
    return frozenset(stem_tokens([text])[0])


class LexicalIndex:
    def __init__(self, retriever: bm25s.BM25) -> None:
        self._retriever = retriever

    @classmethod
    def build(cls, texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> LexicalIndex:
        retriever = bm25s.BM25(k1=k1, b=b)
        tokens = stem_tokens(texts)
        if not any(tokens):
            tokens = [tokens_or_empty or [""] for tokens_or_empty in tokens]
        retriever.index(tokens, show_progress=False)
        return cls(retriever)

    def save(self, directory: Path) -> None:
        self._retriever.save(str(directory))

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        return cls(bm25s.BM25.load(str(directory)))

    def search(self, query: str, limit: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Rows and scores of the best `limit` chunks with a positive score, best first."""
        query_tokens = stem_tokens([query])[0]
        if not query_tokens:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = np.asarray(self._retriever.get_scores(query_tokens), dtype=np.float32)
        limit = min(limit, int(np.count_nonzero(scores > 0)))
        if limit == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top], kind="stable")]
        return top.astype(np.int64), scores[top]

    def idf(self, stems: set[str]) -> dict[str, float]:
        """Robertson-Sparck Jones idf, ``log(1 + (N - df + 0.5) / (df + 0.5))``, of each stem.

        df is read off the BM25 matrix (non-zeros in the stem's column); an unseen stem gets df 0.
        """
        scores = self._retriever.scores
        vocabulary = self._retriever.vocab_dict
        total = int(scores["num_docs"])
        pointers = scores["indptr"]
        weights: dict[str, float] = {}
        for stem in stems:
            column = vocabulary.get(stem)
            df = 0 if column is None else int(pointers[column + 1] - pointers[column])
            weights[stem] = float(np.log(1.0 + (total - df + 0.5) / (df + 0.5)))
        return weights


def matched_terms(query: str, text: str) -> list[str]:
    """Query words (as typed, lower-cased, stop words dropped) whose stem occurs in `text`."""
    text_stems = stem_set(text)
    return [word for word, stem in _query_word_stems(query) if stem in text_stems]


@functools.lru_cache(maxsize=4096)
def _query_word_stems(query: str) -> tuple[tuple[str, str], ...]:
    """(word, stem) for each distinct non-stop word of `query`, cached: asked once per hit."""
    pairs = ((word, stem_tokens([word])[0]) for word in dict.fromkeys(_WORD.findall(query.lower())))
    return tuple((word, stems[0]) for word, stems in pairs if stems)
