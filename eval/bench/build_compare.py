"""`rag build` of SciFact with the real model, timed; optionally against the code at another commit.

Each build runs in a fresh process (`python -c` with `BUILD_SCRIPT`), from the directory of the
code it measures with that directory first on PYTHONPATH (so `import index` is that code, not
the editable install; the process reports which file it imported), with the same virtualenv and
the service's default settings (standalone sentence vectors) into a fresh index directory. The
model is loaded and the documents read before the clock starts: what is timed is `Engine.sync`,
which is what `rag build` runs. With `--compare-ref REF` the same build runs on `REF` checked out
in a temporary `git worktree` (removed afterwards), current code first, then REF; the CPU
other processes used during each build is recorded beside it.

A subset (`--scifact-docs N`, the first N by id) is written to a temporary JSONL outside the
project and removed afterwards; all of SciFact is read where it lies. Left out: the ONNX backend
and contextual sentence vectors (`make bench` measures both).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eval.bench.figures import ratio
from eval.bench.machine import others_cpu, process_cpu

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Uses only what both sides of the comparison have: Settings(index_dir=...), Engine.from_settings,
# Engine.sync(documents) and load_corpus (present before and after the segmented index).
BUILD_SCRIPT = """
import json, sys, time
from pathlib import Path
import index
from corpus import load_corpus
from service.config import Settings
from service.engine import Engine
corpus, index_dir = Path(sys.argv[1]), Path(sys.argv[2])
documents = load_corpus([corpus])
engine = Engine.from_settings(Settings(_env_file=None, index_dir=index_dir))
engine.embedder.model  # loaded before the clock starts
started = time.perf_counter()
engine.sync(documents)
seconds = time.perf_counter() - started
retriever = engine.retriever
reader = getattr(retriever, "reader", None)  # segmented; before it, `data` held every chunk
chunks = reader.chunk_count if reader is not None else len(retriever.data.chunks)
print(json.dumps({
    "seconds": seconds,
    "documents": len(documents),
    "chunks": chunks,
    "code": index.__file__,
}))
"""


def timed_build(code: Path, corpus: Path, index_dir: Path) -> dict[str, Any]:
    """Build `corpus` (a JSONL file) into `index_dir` with the code in `code`."""
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("RAG_")},
        "PYTHONPATH": str(code),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [sys.executable, "-c", BUILD_SCRIPT, str(corpus), str(index_dir)]
    processes, started = process_cpu(), time.perf_counter()
    done = subprocess.run(command, cwd=code, env=environment, capture_output=True, text=True, check=False)
    others = others_cpu(processes, process_cpu(), time.perf_counter() - started)
    if done.returncode != 0:
        raise RuntimeError(f"build with the code in {code} failed: {done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(figures["code"]).resolve().is_relative_to(code.resolve()):
        raise RuntimeError(f"the build meant for {code} imported {figures['code']}")
    figures["seconds"] = round(figures["seconds"], 1)
    figures["other_cores"] = others["cores"]  # what else ran on the machine meanwhile
    return figures


@contextmanager
def worktree(reference: str) -> Iterator[Path]:
    """`reference` checked out (detached) in a temporary git worktree, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="bench-ref-"))
    path = parent / "code"
    git = ["git", "-C", str(PROJECT_ROOT)]
    try:  # inside: a ref that does not resolve must not leave the temporary directory behind
        subprocess.run(
            [*git, "worktree", "add", "--detach", str(path), reference], check=True, capture_output=True
        )
        yield path
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(path)], check=False, capture_output=True)
        subprocess.run([*git, "worktree", "prune"], check=False, capture_output=True)
        shutil.rmtree(parent, ignore_errors=True)


@contextmanager
def corpus_file(scifact: Path, documents: int | None) -> Iterator[Path]:
    """SciFact's corpus.jsonl, or a temporary file (outside the project) of its first `documents` by id."""
    source = scifact / "corpus.jsonl"
    if not documents:
        yield source
        return
    lines = [line for line in source.read_text("utf-8").splitlines() if line.strip()]
    chosen = sorted(lines, key=lambda line: str(json.loads(line)["_id"]))[:documents]
    with tempfile.TemporaryDirectory(prefix="bench-scifact-") as directory:
        path = Path(directory) / "corpus.jsonl"
        path.write_text("\n".join(chosen) + "\n", "utf-8")
        yield path


def build_phase(
    scifact: Path, documents: int | None, reference: str | None, say: Callable[[str], None]
) -> dict[str, Any]:
    figures: dict[str, Any] = {"model": "all-MiniLM-L6-v2 (default settings, standalone sentence vectors)"}
    with corpus_file(scifact, documents) as corpus, tempfile.TemporaryDirectory(prefix="bench-build-") as out:
        say(f"  build: current code ({documents or 'all'} SciFact documents)")
        figures["current"] = timed_build(PROJECT_ROOT, corpus, Path(out) / "current")
        figures["current"]["code"] = "working tree"
        if reference:
            say(f"  build: code at {reference}")
            with worktree(reference) as code:
                commit = subprocess.run(
                    ["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
                ).stdout.strip()
                figures["reference"] = timed_build(code, corpus, Path(out) / "reference")
                figures["reference"]["code"] = f"{reference} ({commit})"
            figures["ratio"] = ratio(figures["current"]["seconds"], figures["reference"]["seconds"])
    return figures
