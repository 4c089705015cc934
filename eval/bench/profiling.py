"""Where a query's time goes: py-spy on a real server under load, samples sorted into stages.

`python -m eval.bench.profiling INDEX_DIR` starts `rag serve` over the index (eval.bench.server),
warms it up, then samples every thread of the server with py-spy while a closed-loop load of
`--concurrency` clients asks rotating questions over HTTP (eval.bench.load). Each sample's stack is
read from the innermost frame outwards and charged to the first stage one of its frames belongs to
(`STAGES`): a BM25 lookup inside document ranking counts as BM25, the model's forward pass as
encoding wherever it was called from. Samples of threads waiting (select, locks, queues) are
idle and left out. A stage's figure is thread-time per request:
``samples of the stage / sampling rate / requests``, so on two cores the stages of one request can
add up to more than its latency, and under concurrency the sum is what one request costs the
machine.

Out of scope: timing in production (that is metrics' job), and native frames inside the model
(`--native` in py-spy would show them; the model's time is one stage here).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from eval.bench.load import run_load
from eval.bench.server import RunningServer, running_code, running_server

# (stage, frame markers): a frame belongs to a stage when its "function (file" text contains a
# marker. Frames are looked at innermost first, so the most specific stage wins.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("idle (waiting)", ("select (selectors", "wait (threading", "get (queue", "_worker (concurrent")),
    ("encoding: the model", ("embed_batch (index/", "forward (torch", "preprocess (sentence_transformers")),
    ("encoding: batching queue", ("(service/batching",)),
    ("query analysis (terms, statistics)", ("(index/text/analysis", "statistics (index/search/query")),
    ("candidates: dense", ("dense_search (index/search/reader", "(index/search/selection")),
    ("candidates: BM25", ("lexical_search (index/search/reader", "(index/storage/postings")),
    ("dense signal and fusion", ("dense_scores (index/search/candidates", "(index/search/fusion")),
    ("near-duplicates", ("(index/search/duplicates",)),
    ("answer sentences", ("(index/search/answers", "(index/search/answer_types")),
    ("answerability", ("(index/search/answerability",)),
    ("hits and explanations", ("_hit (index/search/retrieval", "chunk (index/storage/segments")),
    ("context windows", ("(index/search/context",)),
    ("other index reads", ("(index/search/", "(index/storage/")),
    ("response building", ("(service/results",)),
    ("JSON serialisation", ("serialize_response (fastapi", "dump_json (pydantic", "render (starlette")),
    ("request validation and dependencies", ("solve_dependencies (fastapi", "validate (fastapi")),
    (
        "thread hand-offs",
        ("(anyio/", "wrap_future (asyncio", "call_soon_threadsafe", "set_result (concurrent"),
    ),
    ("HTTP server and middleware", ("(uvicorn/", "(starlette/", "(fastapi/", "(service/")),
    ("event loop", ("(asyncio/",)),
)


@dataclass(frozen=True)
class Breakdown:
    requests: int
    rate: int
    samples: dict[str, int]

    def per_request_ms(self, stage: str) -> float:
        return 1000.0 * self.samples.get(stage, 0) / self.rate / self.requests

    def rows(self) -> list[tuple[str, float, float]]:
        """(stage, ms per request, share of the busy samples), busiest first, idle left out."""
        busy = {stage: count for stage, count in self.samples.items() if not stage.startswith("idle")}
        total = sum(busy.values()) or 1
        return [
            (stage, self.per_request_ms(stage), count / total)
            for stage, count in sorted(busy.items(), key=lambda item: -item[1])
        ]


# A thread whose innermost Python frame is one of these is blocked in native code: uvloop's
# epoll, a worker thread's or the batcher's queue.
IDLE_INNERMOST = ("Runner.run (asyncio/runners", "WorkerThread.run (anyio", "MicroBatcher._work (service")


def stage_of(frames: list[str]) -> str:
    """The stage of one sample: that of its innermost frame with a marker, else "other"."""
    if frames and frames[-1].startswith(IDLE_INNERMOST):
        return "idle (waiting)"
    for frame in reversed(frames):
        for stage, markers in STAGES:
            if any(marker in frame for marker in markers):
                return stage
    return "other"


def read_samples(raw: Path) -> dict[str, int]:
    """py-spy's raw output (one "frame;frame;... count" line per distinct stack) by stage."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text("utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[stage_of(stack.split(";"))] += int(count)
    return dict(counts)


def profile(
    index_dir: Path,
    questions: list[str],
    concurrency: int,
    requests: int,
    rate: int,
    keep: Path | None = None,
    gil_only: bool = False,
    code: Path | None = None,
) -> Breakdown:
    """The stages of `requests` hybrid searches at `concurrency`; `keep`: where to copy py-spy's
    raw samples (for a flame graph, or to look at one stage's frames); `gil_only`: only samples
    of the thread holding the GIL (what concurrent requests queue for); `code`: serve the code of
    that checkout (an earlier commit's `git worktree`) instead of this one."""
    beside = Path(sys.executable).parent / "py-spy"  # the venv's, when the venv is not on PATH
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    with tempfile.TemporaryDirectory() as work, _server(index_dir, questions[-1], code, Path(work)) as server:
        run_load(server.url, questions, concurrency, max(60, concurrency * 4), "hybrid", server.cpu_seconds)
        raw = Path(work) / "samples.txt"
        command = [spy, "record", "-p", str(server.process.pid), "-r", str(rate), "--threads"]
        if gil_only:
            command.append("--gil")
        sampler = subprocess.Popen(
            [*command, "-f", "raw", "-o", str(raw), "--nonblocking"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # py-spy attaches before the measured load starts
        run_load(server.url, questions, concurrency, requests, "hybrid", server.cpu_seconds)
        sampler.send_signal(2)  # SIGINT: py-spy writes its output and exits
        sampler.wait(timeout=60)
        if keep is not None:
            shutil.copyfile(raw, keep)
        return Breakdown(requests, rate, read_samples(raw))


def _server(
    index_dir: Path, first_question: str, code: Path | None, work: Path
) -> contextlib.AbstractContextManager[RunningServer]:
    if code is None:
        return running_server(index_dir, first_question)
    return running_code(code, index_dir, first_question, work / "server.log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index_dir", type=Path)
    parser.add_argument("--questions", type=Path, default=Path("eval/sets/seed-articles.jsonl"))
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--rate", type=int, default=250, help="samples per second per thread")
    parser.add_argument("--keep", type=Path, help="copy py-spy's raw samples here")
    parser.add_argument("--gil", action="store_true", help="only samples holding the GIL")
    parser.add_argument("--code", type=Path, help="serve this checkout's code (e.g. a git worktree)")
    arguments = parser.parse_args()
    lines = arguments.questions.read_text("utf-8").splitlines()
    questions = [json.loads(line).get("question") or json.loads(line)["text"] for line in lines if line]
    breakdown = profile(
        arguments.index_dir,
        questions,
        arguments.concurrency,
        arguments.requests,
        arguments.rate,
        arguments.keep,
        arguments.gil,
        arguments.code,
    )
    table = [f"| stage | ms per request (c={arguments.concurrency}) | share |", "|---|---|---|"]
    table += [f"| {stage} | {ms:.2f} | {share:.1%} |" for stage, ms, share in breakdown.rows()]
    sys.stdout.write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
