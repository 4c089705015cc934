"""The wrk load generator: every question arrives intact, in rotation, and the run reports what
was answered, how fast and how many failed."""

from __future__ import annotations

import itertools
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from eval.bench.wrk import run_wrk, wrk_path

QUESTIONS = ["what projects could Larijani's visit accelerate?", 'a "quoted" \\ back\\slash', "bad é 防衛 🛡️"]


class _Recorder(BaseHTTPRequestHandler):
    asked: ClassVar[list[tuple[str, str]]] = []  # (method, question)

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        self._answer("GET", query["q"][0])

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._answer("POST", body["query"])

    def _answer(self, method: str, question: str) -> None:
        self.asked.append((method, question))
        self.send_response(500 if question.startswith("bad") else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        _Recorder.asked = []


@pytest.mark.parametrize("get", [True, False])
def test_wrk_asks_every_question_in_rotation_and_counts_answers_and_errors(server: str, get: bool) -> None:
    wrk = wrk_path()
    if wrk is None:
        pytest.fail("wrk is not installed: run `make system-packages` (make test does)")
    figures = run_wrk(wrk, server, QUESTIONS, 1, 30, "hybrid", lambda: 0.0, get)
    # wrk is stopped after the 30th answer; a few more may complete while it stops.
    assert 30 <= figures.requests <= 60 and len(figures.latencies_ms) == figures.requests
    assert 10 <= figures.errors <= figures.requests // 3 + 1  # every third question is refused
    assert 0 < figures.p50_ms <= figures.p95_ms <= figures.p99_ms and figures.seconds > 0
    asked = _Recorder.asked[-30:]  # the warm-up's two came first
    assert {method for method, _ in asked} == {"GET" if get else "POST"}
    order = [QUESTIONS.index(question) for _, question in asked]  # each arrived intact
    assert all(later == (earlier + 1) % 3 for earlier, later in itertools.pairwise(order))  # in rotation
