"""The load generator in C: wrk, when it is installed (`make test` and `make bench` install it),
asking `/search` as `eval.bench.load` does (closed loop, one keep-alive connection per client,
the questions in rotation), stopped after a number of answers (the script interrupts wrk, which
otherwise waits out its `-d` duration, so the script says when the answers have come and the
caller interrupts wrk until it exits; a few more answers may arrive while it stops, and are
counted: requests, latencies and the duration stay consistent).

Why: the asyncio clients of `eval.bench.load` share the two cores with the server and are not
cheap (0.25-0.5 cores at concurrency 32); once the server got faster they took CPU it needed and
answered late themselves, which showed as the server's tail latency (c=32 p99 0.9-1.0 s with
them, 0.27-0.42 s with wrk, over the same server). wrk's own cost is a few percent of a core.

In scope: one run, its latencies (wrk's per-response histogram, microsecond buckets) and errors
(wrk's connect, read, write, timeout and non-2xx counts). Out of scope: anything wrk cannot do,
such as checking the answers (the benchmark's first request of each server does that).
"""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import tempfile
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypedDict

from eval.bench.load import LoadFigures, _body, _figures, _params

# A run never takes longer than this; the answers counted stop it first.
LONGEST_RUN_SECONDS = 1800
ERROR_KINDS = ("connect", "read", "write", "status", "timeout")
ANSWERED = "ANSWERED"  # the script's line once the answers asked for have come
INTERRUPT_EVERY_SECONDS = 0.05


class WrkResult(TypedDict):
    duration_us: int
    requests: int
    errors: dict[str, int]
    latencies: list[tuple[int, int]]  # (microseconds, responses that took them)


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(
    wrk: str,
    url: str,
    questions: Sequence[str],
    concurrency: int,
    requests: int,
    mode: str,
    server_cpu: Callable[[], float],
    get: bool,
) -> LoadFigures:
    """`requests` answers at `concurrency` through wrk, after a warm-up of two per connection."""
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "questions.lua"
        script.write_text(_script(questions, mode, get), "utf-8")
        _wrk(wrk, url, script, concurrency, 2 * concurrency)
        children_before, server_before = _children_cpu(), server_cpu()
        result = _wrk(wrk, url, script, concurrency, requests)
        client_cpu, server_seconds = _children_cpu() - children_before, server_cpu() - server_before
    latencies = [microseconds / 1e6 for microseconds, count in result["latencies"] for _ in range(int(count))]
    errors = sum(result["errors"][kind] for kind in ERROR_KINDS)
    seconds = result["duration_us"] / 1e6
    return _figures(mode, concurrency, latencies, errors, seconds, client_cpu, server_seconds)


def _wrk(wrk: str, url: str, script: Path, concurrency: int, answers: int) -> WrkResult:
    command = [
        wrk,
        "-t1",
        f"-c{concurrency}",
        f"-d{LONGEST_RUN_SECONDS}s",
        "--timeout",
        "60s",
        "-s",
        str(script),
        url,
        str(answers),
    ]
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True) as process,
    ):
        if process.stdout is None:  # not with PIPE; says so to the type checker
            raise RuntimeError("wrk without a pipe")
        output = []
        for line in process.stdout:
            if line.strip() == ANSWERED:
                _interrupt_until_it_ends(process)
            output.append(line)
        process.wait()
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    for line in output:
        if line.startswith("RESULT "):
            result: WrkResult = json.loads(line.removeprefix("RESULT "))
            return result
    raise RuntimeError(f"wrk gave no result (exit {process.returncode}): {stderr[-2000:]}")


def _interrupt_until_it_ends(process: subprocess.Popen[str]) -> None:
    """SIGINT to wrk until it exits. wrk sleeps out its `-d` duration in its main thread and
    only a signal handled there ends the sleep; a signal the process gets while its worker
    thread is still winding down may be handled by that thread instead, and then wrk would
    wait out the whole duration (seen: half an hour with the server idle). Popen's
    `send_signal` never signals a pid that exited and was reused."""
    while process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=INTERRUPT_EVERY_SECONDS)
        except subprocess.TimeoutExpired:
            continue


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _script(questions: Sequence[str], mode: str, get: bool) -> str:
    """wrk's Lua: the requests in rotation, a stop after the number of answers given as the
    script's argument, and one `RESULT {json}` line at the end."""
    if get:
        calls = [
            f"wrk.format('GET', {_lua('/search?' + urllib.parse.urlencode(_params(q, mode)))})"
            for q in questions
        ]
    else:
        calls = [
            f"wrk.format('POST', '/search', {{['Content-Type'] = 'application/json'}}, "
            f"{_lua(json.dumps(_body(q, mode)))})"
            for q in questions
        ]
    return "\n".join(
        [
            "local limit, answered, next_request = 0, 0, 0",
            "local requests = {}",
            "function init(args)",
            "  limit = tonumber(args[1])",
            *(f"  requests[{row + 1}] = {call}" for row, call in enumerate(calls)),
            "end",
            "function request()",
            "  next_request = next_request % #requests + 1",
            "  return requests[next_request]",
            "end",
            "function response(status, headers, body)",
            "  answered = answered + 1",
            "  if answered == limit then",
            "    wrk.thread:stop()",
            # The caller interrupts wrk, which otherwise waits out its whole -d duration; the
            # run's duration is then the time to the last answer counted.
            f"    io.write('{ANSWERED}\\n')",
            "    io.flush()",
            "  end",
            "end",
            "function done(summary, latency, requests)",
            "  local pairs = {}",
            "  for i = 1, #latency do",
            "    local value, count = latency(i)",
            "    if count and count > 0 then pairs[#pairs + 1] = '[' .. value .. ',' .. count .. ']' end",
            "  end",
            "  local e = summary.errors",
            '  io.write(string.format(\'RESULT {"duration_us": %d, "requests": %d, "errors": '
            '{"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, "latencies": [%s]}\\n\', '
            "summary.duration, summary.requests, e.connect, e.read, e.write, e.status, e.timeout, "
            "table.concat(pairs, ',')))",
            "end",
        ]
    )


def _lua(text: str) -> str:
    """`text` as a Lua string literal (decimal escapes for every byte outside printable ASCII)."""
    escaped = "".join(
        chr(byte) if 32 <= byte < 127 and chr(byte) not in "\\'" else f"\\{byte:03d}"
        for byte in text.encode("utf-8")
    )
    return f"'{escaped}'"
