"""BM25 over chunks with bm25s, on the terms of the text analyser (index.analysis).

Scores come from `get_scores` over the whole matrix and the top n are selected with numpy, which
keeps unknown query terms harmless and stays fast at a million chunks. Chunks and queries are
turned into terms by `index.analysis.terms` only, so both sides always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import numpy.typing as npt

from index.analysis import terms


class LexicalIndex:
    def __init__(self, retriever: bm25s.BM25) -> None:
        self._retriever = retriever

    @classmethod
    def build(cls, texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> LexicalIndex:
        retriever = bm25s.BM25(k1=k1, b=b)
        tokens = [terms(text) for text in texts]
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
        query_tokens = terms(query)
        if not query_tokens:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores = np.asarray(self._retriever.get_scores(query_tokens), dtype=np.float32)
        limit = min(limit, int(np.count_nonzero(scores > 0)))
        if limit == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top], kind="stable")]
        return top.astype(np.int64), scores[top]

    def idf(self, query_terms: set[str]) -> dict[str, float]:
        """Robertson-Sparck Jones idf, ``log(1 + (N - df + 0.5) / (df + 0.5))``, of each term.

        df is read off the BM25 matrix (non-zeros in the term's column); an unseen term gets df 0.
        """
        scores = self._retriever.scores
        vocabulary = self._retriever.vocab_dict
        total = int(scores["num_docs"])
        pointers = scores["indptr"]
        weights: dict[str, float] = {}
        for term in query_terms:
            column = vocabulary.get(term)
            df = 0 if column is None else int(pointers[column + 1] - pointers[column])
            weights[term] = float(np.log(1.0 + (total - df + 0.5) / (df + 0.5)))
        return weights
