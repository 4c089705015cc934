"""Property-based fuzz of the whole HTTP API from its own OpenAPI spec (schemathesis).

Every operation in `/openapi.json`, writes included, gets generated requests, valid (positive)
and invalid (negative); each response must not be a 5xx and must conform to the spec (status
code documented, body schema, content type, headers). The app runs with the fake embedder over
the bundled corpus behind a real uvicorn on loopback. The spec is taken from the app itself at
collection time. Hypothesis drives each operation directly (`as_strategy`) because
schemathesis's pytest plugin does not work with the pytest this project uses.
`MAX_EXAMPLES` bounds the run per operation and mode; the examples are derandomised.

One check is left out: `positive_data_acceptance` (every schema-valid request must get a 2xx).
Some rules cannot be written in JSON Schema: a document whose text is only a page number is
empty once cleaned, a query of spaces is empty, and query length is a run-time setting. Those
requests get a documented 422 naming the rule, which the conformance checks still verify.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES

from corpus import load_corpus
from index.embedding import HashingEmbedder
from service.app import create_app
from service.collections import open_collection
from service.engine import Engine
from tests.conftest import BUNDLED_CORPUS, make_settings
from tests.live_server import live_server

MAX_EXAMPLES = 30
READ_KEY, ADMIN_KEY = "fuzz-read-key", "fuzz-admin-key"
SPEC: dict[str, Any] = create_app(make_settings(Path("/nonexistent"))).openapi()
# A negative body the fuzzer makes too large (a deep filter) is refused by its size first: 413
# is a rejection too.
REJECTIONS = [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
SCHEMA = schemathesis.openapi.from_dict(
    SPEC,
    config=SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}}
    ),
)
OPERATIONS = sorted(result.ok().label for result in SCHEMA.get_all_operations())


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Small limits, so the fuzzer reaches them. Keys are set, so schemathesis also checks that
    # each route refuses requests without one (the spec declares the security schemes).
    settings = make_settings(
        tmp_path_factory.mktemp("fuzz") / "index",
        max_body_bytes=20_000,
        max_query_chars=200,
        api_keys=[READ_KEY],
        admin_keys=[ADMIN_KEY],
    )
    engine = Engine.from_settings(settings, embedder=HashingEmbedder())
    engine.sync(load_corpus([BUNDLED_CORPUS]))
    # `news`, the path parameter's other example, exists too: fuzzing reaches a named collection's
    # routes as well as the 404 of one that does not exist.
    news = open_collection(settings, "news", create=True, embedder=engine.embedder)
    news.sync(load_corpus([BUNDLED_CORPUS]))
    with live_server(create_app(engine.settings, engine=engine)) as url:
        yield url


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_spec(base_url: str, label: str, mode: GenerationMode) -> None:
    operation = SCHEMA.find_operation_by_label(label)
    assert operation is not None

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=base_url,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            excluded_checks=[positive_data_acceptance],
        )

    try:
        check()
    except Unsatisfiable:
        pytest.skip(f"{label} takes no input, so no invalid request exists")
    except BaseExceptionGroup as error:
        if not _only_recursion(error):
            raise
        # Schemathesis recursed without end building an invalid case from the recursive filter
        # schema, before sending anything (which route does depends on its generated cases); the
        # same filter schema is fuzzed negatively through the other search routes.
        pytest.skip(f"schemathesis cannot generate negative cases for {label} (RecursionError)")


def _only_recursion(error: BaseException) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return all(_only_recursion(inner) for inner in error.exceptions)
    return isinstance(error, RecursionError)


def test_every_route_is_fuzzed() -> None:
    assert {
        "GET /healthz",
        "POST /search",
        "POST /documents",
        "DELETE /documents/{document_id}",
        "GET /collections",
        "GET /collections/{collection}/search",
        "POST /collections/{collection}/documents",
    } <= set(OPERATIONS)


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
