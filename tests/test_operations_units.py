"""The request log's format choice and text lines, the rate limit's window and read/write split,
and the request log switched off, without a server process (tests/test_operations_live.py has
the real-server tests)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import LogFormat
from service.engine import Engine
from service.ratelimit import Rate, is_write, rate
from service.request_context import request_id_from
from service.request_log import LOGGER_NAME, log_format, render
from tests.conftest import make_settings


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_format_is_text_on_a_terminal_and_json_otherwise(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert log_format(settings, Terminal()) is LogFormat.TEXT
    assert log_format(settings, io.StringIO()) is LogFormat.JSON
    assert log_format(make_settings(tmp_path, log_format="json"), Terminal()) is LogFormat.JSON


def test_a_text_line_reads_left_to_right() -> None:
    fields = {
        "time": "2026-01-01T00:00:00.000+00:00",
        "request_id": "abc",
        "method": "GET",
        "route": "/search",
        "status": 200,
        "duration_ms": 4.2,
        "key": "1a2b3c4d",
        "client": "127.0.0.1",
        "results": 5,
        "query": 'say "hi"',
    }
    assert render(fields, LogFormat.TEXT) == (
        "2026-01-01T00:00:00.000+00:00 GET /search 200 4.2ms id=abc key=1a2b3c4d client=127.0.0.1 "
        'results=5 query="say \\"hi\\""'
    )


def test_the_request_id_rule() -> None:
    assert request_id_from([(b"X-Request-ID", b"abc-1:2/3=")]) == "abc-1:2/3="
    assert len(request_id_from([(b"x-request-id", b"bad value")])) == 32
    assert len(request_id_from([])) == 32


@pytest.mark.parametrize(
    ("per_second", "burst", "amount", "window"),
    [(0.5, 5, 5, 10), (2, 10, 10, 5), (100, None, 100, 1), (3, 4, 6, 2), (0.3, None, 1, 4)],
)
def test_a_rate_and_burst_as_a_moving_window(
    per_second: float, burst: int | None, amount: int, window: int
) -> None:
    limit = rate(per_second, burst)
    assert isinstance(limit, Rate)
    item = limit.item("test")
    assert (item.amount, item.get_expiry()) == (amount, window)
    assert rate(None, 5) is None


def test_writes_and_reads() -> None:
    assert is_write("POST", "/documents") and is_write("DELETE", "/documents/a")
    assert is_write("POST", "/collections/news/admin/optimize") and is_write("POST", "/jobs/ingest")
    assert not is_write("POST", "/search") and not is_write("GET", "/documents")
    assert not is_write("POST", "/documentsx")


def test_no_line_without_the_request_log(fake_engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    settings = fake_engine.settings.model_copy(update={"request_log": False})
    with TestClient(create_app(settings, engine=fake_engine)) as client:
        logger = logging.getLogger(LOGGER_NAME)
        logger.addHandler(caplog.handler)
        try:
            response = client.get("/healthz")
        finally:
            logger.removeHandler(caplog.handler)
    assert response.headers["x-request-id"]
    assert not [record for record in caplog.records if record.name == LOGGER_NAME]
