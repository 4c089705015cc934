"""The cluster phase's builds: `rag build` over the same documents, here and on the cluster, timed.

Each build is the real command (`python -m eval.cli build PATHS`, what `rag build` runs) in a
process of its own, into a fresh index directory, with this code first on PYTHONPATH and none
of the caller's `RAG_*` settings (`cluster_serving.service_environment`): on this machine alone,
on the cluster with `--cluster ADDRESS` and `RAG_CLUSTER_EMBED_ACTORS` actors, or as a sharded
index (`--shards N --cluster ADDRESS`). The time is the command's wall time from spawn to exit:
start-up, the model loaded by the driver (and, on the cluster, by each actor), embedding and
writing; chunks/s is the index's chunk count over it. The CPU other processes used meanwhile is
recorded beside it (the machine may be shared).

The documents (`corpus_paths`): the bundled corpus's directory and the first N SciFact
documents by id in a temporary JSONL outside the project (`build_compare.corpus_file`), read
where they lie otherwise. Left out: contextual sentence vectors (cluster builds refuse them),
builds on several machines, repeated rounds.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from corpus import load_corpus
from eval.bench.build_compare import corpus_file
from eval.bench.cluster_serving import service_environment
from eval.bench.machine import others_cpu, process_cpu
from index.search.reader import IndexReader
from index.sharding.layout import ShardedLayout
from index.storage.store import IndexStore

BUILD_TIMEOUT_SECONDS = 4 * 3600.0
NODES_LINE = re.compile(r"(\d+) actor\(s\) on (\d+) node\(s\)")


@contextmanager
def corpus_paths(seed: Path, scifact: Path, documents: int) -> Iterator[tuple[list[Path], int]]:
    """The paths a build is given (the bundled corpus, then SciFact's first `documents` by id; 0:
    all of it) and how many documents they hold."""
    with corpus_file(scifact, documents) as scifact_file:
        paths = [seed, scifact_file]
        yield paths, len(load_corpus(paths))


def timed_build(
    paths: Sequence[Path],
    index_dir: Path,
    log_path: Path,
    options: Sequence[str] = (),
    environment: dict[str, str] | None = None,
    shards: int | None = None,
) -> dict[str, Any]:
    """`rag build [options] PATHS` into `index_dir` (fresh), timed; its figures."""
    if index_dir.exists():
        raise FileExistsError(f"{index_dir} exists: each build goes into a fresh directory")
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "eval.cli", "build", *options, *(str(p.resolve()) for p in paths)]
    processes, started = process_cpu(), time.perf_counter()
    with open(log_path, "ab") as log:
        done = subprocess.run(
            command,
            env=service_environment(index_dir, environment),
            cwd=log_path.parent,  # no project `.env`
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT_SECONDS,
            check=False,
        )
    seconds = time.perf_counter() - started
    others = others_cpu(processes, process_cpu(), seconds)
    output = log_path.read_text(errors="replace")
    if done.returncode != 0:
        raise RuntimeError(f"rag build {' '.join(options)} failed ({done.returncode}): {output[-3000:]}")
    chunks, documents = index_counts(index_dir, shards)
    figures: dict[str, Any] = {
        "options": " ".join(options),
        "documents": documents,
        "chunks": chunks,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(chunks / seconds, 2) if seconds else None,
        "other_cores": others["cores"],
    }
    if found := NODES_LINE.search(output):
        figures["actors"], figures["nodes"] = int(found.group(1)), int(found.group(2))
    return figures


def index_counts(index_dir: Path, shards: int | None = None) -> tuple[int, int]:
    """(chunks, documents) of the index in `index_dir`: an ordinary one, or summed over the
    shards of a sharded one."""
    if shards is None:
        reader = IndexReader.open(IndexStore(index_dir))
        return reader.chunk_count, reader.document_count
    readers = [IndexReader.open(store) for store in ShardedLayout.open(index_dir, shards).stores()]
    return sum(r.chunk_count for r in readers), sum(r.document_count for r in readers)
