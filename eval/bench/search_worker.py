"""A search worker for the `filters` phase's comparison of two checkouts (`eval.bench.filtering`).

Run as ``python -c <this source> INDEX VECTORS QUESTIONS K`` with a checkout first on the path
and as the working directory, so `index` is that checkout's code whether or not it has this
module: only `index` APIs that predate filters are used (`IndexReader.open`, `Retriever`,
`Retriever.search(text, k, mode, query_vector)`). It opens the index, prints ``ready``, then
for each line ``START COUNT`` on stdin runs the hybrid searches (k=K, the question vector given:
no encoding) of questions START to START+COUNT, unfiltered, and prints their milliseconds as one
JSON list. It stops at the end of stdin. Out of scope: filters (the earlier code has none).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    import numpy as np

    from index.embedding import HashingEmbedder
    from index.search.modes import Mode
    from index.search.options import RetrievalOptions
    from index.search.reader import IndexReader
    from index.search.retrieval import Retriever
    from index.storage.store import IndexStore

    root, vectors_path, questions_path, k = (
        Path(sys.argv[1]),
        sys.argv[2],
        Path(sys.argv[3]),
        int(sys.argv[4]),
    )
    questions: list[str] = json.loads(questions_path.read_text("utf-8"))
    vectors = np.load(vectors_path)
    reader = IndexReader.open(IndexStore(root))
    retriever = Retriever(reader, HashingEmbedder(reader.dimension), RetrievalOptions())
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        start, count = (int(word) for word in line.split())
        milliseconds = []
        for number in range(start, start + count):
            position = number % len(questions)
            started = time.perf_counter()
            retriever.search(questions[position], k=k, mode=Mode.HYBRID, query_vector=vectors[position])
            milliseconds.append(round(1000 * (time.perf_counter() - started), 4))
        sys.stdout.write(json.dumps(milliseconds) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
