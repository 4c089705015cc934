"""The floor: what the embedding model alone costs, measured in the same run as everything else.

Questions one at a time (what a lone request pays), questions in batches (what concurrent
requests can share) and passages in build-sized batches (what a build cannot go below). The
question floor is that of the runtime the service encodes questions with (`served_question_floor`:
the model's ONNX copy by default), the model's own `SentenceTransformer.encode` beside it.
`floor_process` measures the question floor in a process of its own, started with the
environment a server gets (the baseline phase's floor, next to servers it is compared with).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eval.bench.server import wait_or_kill
from index.embedding import Embedder, SentenceTransformerEmbedder

Encode = Callable[[Sequence[str]], object]


def time_calls(encode: Encode, batches: Sequence[Sequence[str]]) -> list[float]:
    """Seconds per `encode` call, one per batch."""
    seconds: list[float] = []
    for batch in batches:
        started = time.perf_counter()
        encode(batch)
        seconds.append(time.perf_counter() - started)
    return seconds


def library_encode(embedder: SentenceTransformerEmbedder) -> Encode:
    """`SentenceTransformer.encode`, the model's own API: the floor the targets are measured against."""
    model = embedder.model
    return lambda texts: model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)


def question_floor(
    encode: Encode, questions: Sequence[str], batch_sizes: Sequence[int], service: Encode | None = None
) -> dict[str, float]:
    """Per-question latency encoded alone, and throughput alone and in batches, through `encode`;
    with `service` (the service's `embed_batch`: the same vectors, less per-call bookkeeping) also
    its one-at-a-time latency, each question timed through both back to back so both see the
    same load."""
    encode(list(questions[:16]))  # warm-up: first calls allocate
    if service is not None:
        service(list(questions[:16]))
    single, served = [], []
    for question in questions:
        single += time_calls(encode, [[question]])
        if service is not None:
            served += time_calls(service, [[question]])
    figures: dict[str, float] = {
        "questions": len(questions),
        "single_ms_p50": 1000 * statistics.median(single),
        "single_ms_mean": 1000 * statistics.fmean(single),
        "single_per_s": len(single) / sum(single),
    }
    if served:
        figures["service_single_ms_p50"] = 1000 * statistics.median(served)
    for size in batch_sizes:
        batches = [questions[i : i + size] for i in range(0, len(questions) - size + 1, size)]
        seconds = time_calls(encode, batches)
        figures[f"batch{size}_per_s"] = sum(len(b) for b in batches) / sum(seconds)
    return figures


def served_question_floor(
    embedder: SentenceTransformerEmbedder, questions: Sequence[str], batch_sizes: Sequence[int]
) -> dict[str, Any]:
    """`question_floor` of what the service encodes questions with under default settings
    (`service.engine.question_encoder_for`: the model's ONNX copy), the figures the targets are
    held against, and beside it the model's own `SentenceTransformer.encode` as `torch_*` (with
    `torch_service_single_ms_p50`, the model's `embed_batch`). `runtime` names the first."""
    from service.config import Settings
    from service.engine import question_encoder_for

    encoder = question_encoder_for(Settings(_env_file=None), embedder)  # type: ignore[call-arg]
    figures: dict[str, Any] = dict(question_floor(encoder.embed_batch, questions, batch_sizes))
    library = question_floor(library_encode(embedder), questions, batch_sizes, service=embedder.embed_batch)
    figures.update({f"torch_{key}": value for key, value in library.items() if key != "questions"})
    figures["runtime"] = getattr(encoder, "runtime", "torch")
    return figures


def passage_floor(embedder: Embedder, passages: Sequence[str], batch_size: int = 64) -> dict[str, float]:
    """Passages per second through `embed_batch`, longest first like the build (little padding)."""
    ordered = sorted(passages, key=len, reverse=True)
    embedder.embed_batch(ordered[:batch_size])  # warm-up
    seconds = time_calls(
        embedder.embed_batch, [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    )
    return {
        "passages": len(passages),
        "mean_chars": statistics.fmean(len(p) for p in passages) if passages else 0.0,
        "per_s": len(passages) / sum(seconds) if seconds else 0.0,
    }


# Reads the questions (one JSON line), loads the model, says "ready", then measures the floor
# once per line it reads, answering with one JSON line each time.
FLOOR_SCRIPT = """
import json, sys
from eval.bench.encoding import served_question_floor
from index.embedding import SentenceTransformerEmbedder
questions, batch_sizes = json.loads(sys.stdin.readline())
embedder = SentenceTransformerEmbedder()
served_question_floor(embedder, questions[:2], [])  # loads both runtimes (and exports if need be)
print("ready", flush=True)
for _ in sys.stdin:
    print(json.dumps(served_question_floor(embedder, questions, batch_sizes)), flush=True)
"""


@contextmanager
def floor_process(
    questions: Sequence[str], batch_sizes: Sequence[int], environment: dict[str, str], log_path: Path
) -> Iterator[Callable[[], dict[str, float]]]:
    """A process that keeps the model loaded; each call of the function yielded measures
    `question_floor` there once. Its own process because the floor must run under the thread
    settings the servers run with (`rag serve` sets `service.cli.OPENMP_ENVIRONMENT` before torch
    loads, which a process that has loaded torch cannot change): with OpenMP's default, spinning
    threads, a busy shared machine made one question ~3x slower (129 against 44 ms p50)."""
    with open(log_path, "wb") as log:  # a file, not a pipe: the model's warnings would fill a pipe
        process = subprocess.Popen(
            [sys.executable, "-c", FLOOR_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=environment,
            cwd=log_path.parent,
            text=True,
        )
    stdin, stdout = process.stdin, process.stdout
    if stdin is None or stdout is None:  # not with PIPE; says so to the type checker
        raise RuntimeError("floor process without pipes")

    def answer() -> str:
        line = stdout.readline()
        if not line:
            errors = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the floor process exited with {process.wait()}: {errors}")
        return line.strip()

    def measure() -> dict[str, float]:
        stdin.write("\n")
        stdin.flush()
        figures: dict[str, float] = json.loads(answer())
        return figures

    try:
        stdin.write(json.dumps([list(questions), list(batch_sizes)]) + "\n")
        stdin.flush()
        if answer() != "ready":
            raise RuntimeError("the floor process did not start")
        yield measure
    finally:
        stdin.close()
        wait_or_kill(process)
