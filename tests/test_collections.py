"""Collections in one app (fake embedder): isolation, creation by the first write, 404/422 for
missing and badly named collections, filters inside a collection, key scopes (403), the CLI's
`--collection` and the settings' key-scope rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service import cli as cli_module
from service.app import create_app
from service.engine import Engine
from tests.conftest import make_settings

ZEBRA = {
    "id": "zebra-crossing",
    "title": "Zebras at the harbour",
    "text": "A herd of zebras crossed the Karachi harbour bridge at dawn, stopping traffic.",
    "source": "Harbour Times",
}
GIRAFFE = {
    "id": "giraffe-parade",
    "title": "Giraffes in the square",
    "text": "Giraffes paraded through the city square, and zebras followed them at noon.",
    "source": "City Gazette",
}
SCOPED_READ, ADMIN, NEWS_ADMIN = "news-reader", "admin-all", "news-admin"


@pytest.fixture
def collections_client(fake_engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = fake_engine.settings.model_copy(update={"collections_dir": tmp_path / "collections"})
    with TestClient(create_app(settings, engine=fake_engine)) as client:
        yield client


def add(client: TestClient, collection: str, document: dict[str, Any], **kwargs: Any) -> Any:
    return client.post(f"/collections/{collection}/documents", json=document, **kwargs)


def result_ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [result["document"]["id"] for result in response.json()["results"]]


def test_a_document_written_to_one_collection_appears_in_no_other(collections_client: TestClient) -> None:
    client = collections_client
    assert add(client, "news", ZEBRA).json()["status"] == "added"
    assert add(client, "animals", GIRAFFE).json()["status"] == "added"
    question = {"q": "zebras crossed the harbour bridge", "k": 10}

    assert set(result_ids(client.get("/collections/news/search", params=question))) == {"zebra-crossing"}
    assert set(result_ids(client.get("/collections/animals/search", params=question))) == {"giraffe-parade"}
    default_ids = set(result_ids(client.get("/search", params=question)))
    assert default_ids and not default_ids & {"zebra-crossing", "giraffe-parade"}
    post = client.post("/collections/news/search/documents", json={"query": question["q"]})
    assert [r["document"]["id"] for r in post.json()["results"]] == ["zebra-crossing"]

    listed = client.get("/collections/news/documents").json()["documents"]
    assert [document["id"] for document in listed] == ["zebra-crossing"]
    assert "zebra-crossing" not in {d["id"] for d in client.get("/documents").json()["documents"]}
    assert client.get("/documents/zebra-crossing").json()["error"]["code"] == "document_not_found"
    assert client.get("/collections/news/documents/zebra-crossing").json()["text"] == ZEBRA["text"]

    collections = client.get("/collections").json()
    counts = {c["name"]: c["documents"] for c in collections["collections"]}
    assert counts == {"default": 3, "animals": 1, "news": 1}
    assert [c["name"] for c in collections["collections"]] == ["default", "animals", "news"]


def test_removing_from_a_collection_leaves_the_others(collections_client: TestClient) -> None:
    client = collections_client
    add(client, "news", ZEBRA)
    add(client, "animals", {**ZEBRA, "text": ZEBRA["text"] + " A second account."})
    removed = client.delete("/collections/news/documents/zebra-crossing")
    assert removed.json()["status"] == "removed"
    assert client.get("/collections/news/documents").json()["documents"] == []
    assert [d["id"] for d in client.get("/collections/animals/documents").json()["documents"]] == [
        "zebra-crossing"
    ]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/collections/missing/search", {"params": {"q": "zebras"}}),
        ("POST", "/collections/missing/search", {"json": {"query": "zebras"}}),
        ("POST", "/collections/missing/search/anthropic", {"json": {"query": "zebras"}}),
        ("GET", "/collections/missing/documents", {}),
        ("GET", "/collections/missing/documents/zebra-crossing", {}),
        ("DELETE", "/collections/missing/documents/zebra-crossing", {}),
        ("GET", "/collections/missing/healthz", {}),
        ("POST", "/collections/missing/admin/optimize", {}),
    ],
)
def test_a_collection_without_an_index_is_404_and_stays_missing(
    collections_client: TestClient, tmp_path: Path, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    response = collections_client.request(method, path, **kwargs)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "collection_not_found"
    assert "missing" in response.json()["error"]["message"]
    assert not (tmp_path / "collections" / "missing").exists()
    assert [c["name"] for c in collections_client.get("/collections").json()["collections"]] == ["default"]


def test_a_refused_first_write_creates_nothing(collections_client: TestClient, tmp_path: Path) -> None:
    response = add(collections_client, "empty", {"id": "x", "text": "   "})
    assert response.status_code == 422
    assert collections_client.get("/collections/empty/documents").json()["error"]["code"] == (
        "collection_not_found"
    )
    assert not (tmp_path / "collections" / "empty" / "CURRENT").exists()


@pytest.mark.parametrize("name", ["News", "-news", "a" * 65, "news.old"])
def test_a_bad_collection_name_is_422_naming_the_rule(collections_client: TestClient, name: str) -> None:
    for response in (
        collections_client.get(f"/collections/{name}/search", params={"q": "zebras"}),
        add(collections_client, name, ZEBRA),
    ):
        assert response.status_code == 422, response.text
        assert "lowercase letters, digits" in response.text or "pattern" in response.text


def test_filters_work_inside_a_collection(collections_client: TestClient) -> None:
    client = collections_client
    add(client, "news", ZEBRA)
    add(client, "news", GIRAFFE)
    question = {"query": "zebras", "k": 10}
    assert set(result_ids(client.post("/collections/news/search", json=question))) == {
        "zebra-crossing",
        "giraffe-parade",
    }
    only_gazette = {**question, "filter": {"must": [{"key": "source", "match": {"value": "City Gazette"}}]}}
    assert set(result_ids(client.post("/collections/news/search", json=only_gazette))) == {"giraffe-parade"}
    by_get = client.get("/collections/news/search", params={"q": "zebras", "source": "Harbour Times"})
    assert set(result_ids(by_get)) == {"zebra-crossing"}


@pytest.fixture
def scoped_client(fake_engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = fake_engine.settings.model_copy(
        update={
            "collections_dir": tmp_path / "collections",
            "api_keys": [f"{SCOPED_READ}@news+sport"],
            "admin_keys": [ADMIN, f"{NEWS_ADMIN}@news"],
        }
    )
    with TestClient(create_app(settings, engine=fake_engine)) as client:
        add(client, "news", ZEBRA, headers=bearer(ADMIN))
        add(client, "animals", GIRAFFE, headers=bearer(ADMIN))
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_scoped_key_reads_only_its_collections(scoped_client: TestClient) -> None:
    client, headers = scoped_client, bearer(SCOPED_READ)
    found = client.get("/collections/news/search", params={"q": "zebras"}, headers=headers)
    assert set(result_ids(found)) == {"zebra-crossing"}
    # Forbidden whether the collection exists (animals, default) or not (sport is in scope but
    # empty, so 404; elsewhere is out of scope, so 403 without saying whether it exists).
    for path in ("/collections/animals/search", "/search", "/collections/elsewhere/search"):
        refused = client.get(path, params={"q": "zebras"}, headers=headers)
        assert refused.status_code == 403, path
        assert refused.json()["error"]["code"] == "forbidden_collection"
        assert "news, sport" in refused.json()["error"]["message"]
    assert client.get("/collections/sport/search", params={"q": "z"}, headers=headers).status_code == 404
    listed = client.get("/collections", headers=headers).json()["collections"]
    assert [c["name"] for c in listed] == ["news"]
    all_listed = client.get("/collections", headers=bearer(ADMIN)).json()["collections"]
    assert [c["name"] for c in all_listed] == ["default", "animals", "news"]


def test_a_scoped_admin_key_writes_only_its_collections(scoped_client: TestClient) -> None:
    client = scoped_client
    assert add(client, "news", GIRAFFE, headers=bearer(NEWS_ADMIN)).json()["status"] == "added"
    for collection in ("animals", "brand-new"):
        refused = add(client, collection, ZEBRA, headers=bearer(NEWS_ADMIN))
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden_collection"
    assert client.get("/collections/brand-new/documents", headers=bearer(ADMIN)).status_code == 404
    read_only = add(client, "news", ZEBRA, headers=bearer(SCOPED_READ))
    assert read_only.json()["error"]["code"] == "admin_key_required"
    assert client.post("/collections/news/documents", json=ZEBRA).status_code == 401


def test_settings_refuse_a_key_scope_that_is_no_collection_name(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a valid collection name"):
        make_settings(tmp_path, api_keys="k1,k2@News")
    assert make_settings(tmp_path, api_keys="k1,k2@news+sport").api_keys == ["k1", "k2@news+sport"]


def test_cli_builds_and_asks_a_collection(runner: CliRunner, tmp_path: Path) -> None:
    article = tmp_path / "zebra.md"
    article.write_text(f"---\nid: zebra-crossing\ntitle: Zebras\n---\n{ZEBRA['text']}", "utf-8")
    built = runner.invoke(cli_module.cli, ["build", "--collection", "news", str(article)])
    assert built.exit_code == 0, built.output
    assert str(tmp_path / "collections" / "news") in built.output
    asked = runner.invoke(cli_module.cli, ["ask", "zebras", "--collection", "news", "--json"])
    assert asked.exit_code == 0, asked.output
    assert {r["document"]["id"] for r in json.loads(asked.output)["results"]} == {"zebra-crossing"}
    assert not (tmp_path / "index").exists()  # the default collection was never touched

    missing = runner.invoke(cli_module.cli, ["ask", "zebras", "--collection", "sport"])
    assert missing.exit_code == 1
    assert "no collection named 'sport'" in missing.output
    bad = runner.invoke(cli_module.cli, ["remove", "x", "--collection", "Sport"])
    assert bad.exit_code == 2
    assert "not a valid collection name" in bad.output
