"""Property-based fuzz of the whole HTTP API from its own OpenAPI spec (schemathesis).

Every operation in `/openapi.json`, writes included, gets generated requests, valid and invalid;
each response must not be a 5xx and must match the spec (status code documented, body schema,
content type, headers). The app runs with the fake embedder over the bundled corpus behind a
real uvicorn on loopback (in a thread: schemathesis's ASGI client would re-run the app's
lifespan per call), so the run stays small; `max_examples` bounds it per operation.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from corpus import load_corpus
from index.embedding import HashingEmbedder
from service.app import create_app
from service.engine import Engine
from tests.conftest import BUNDLED_CORPUS, make_settings
from tests.live_server import live_server

MAX_EXAMPLES = 30


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Small limits, so the fuzzer reaches them; writes allowed (loopback, no keys).
    engine = Engine.from_settings(
        make_settings(tmp_path_factory.mktemp("fuzz") / "index", max_body_bytes=20_000, max_query_chars=200),
        embedder=HashingEmbedder(),
    )
    engine.sync(load_corpus([BUNDLED_CORPUS]))
    with live_server(create_app(engine.settings, engine=engine)) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
def test_api_conforms_to_its_spec(case: schemathesis.Case) -> None:
    case.call_and_validate()


def test_spec_documents_only_our_error_shape(base_url: str) -> None:
    spec = httpx.get(f"{base_url}/openapi.json").json()
    assert "HTTPValidationError" not in str(spec)
    post = spec["paths"]["/documents"]["post"]
    for status in ("400", "401", "403", "413", "415", "422"):
        assert post["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
    assert set(post["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"BearerKey", "ApiKeyHeader"} <= set(spec["components"]["securitySchemes"])
