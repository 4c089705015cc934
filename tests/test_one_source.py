"""Each default has one source, and every surface takes it from there; dependencies point one way.

The request defaults (k, mode, context) come from `index.search.options`; the retrieval and index
options from their dataclasses, which `Settings` derives from. The README's settings table is
generated from the `Settings` field descriptions. The HTTP client imports no server code, and no
module of `service/` or `index/` imports `eval/`.
"""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from eval.cli import rag
from index.search.modes import Mode
from index.search.options import DEFAULT_DOCUMENT_K, DEFAULT_K, DEFAULT_MODE, MAX_CONTEXT, RetrievalOptions
from index.write.building import IndexSettings
from service.client import RagClient
from service.collections import Collections
from service.config import README, Settings, readme_with_settings_table, settings_table
from service.engine import Engine
from tests.conftest import PROJECT_ROOT

SERVER_MODULES = (
    "fastapi",
    "starlette",
    "faiss",
    "torch",
    "bm25s",
    "sklearn",
    "numpy",
    "sentence_transformers",
)


def test_settings_defaults_are_the_options_defaults() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.retrieval_options() == RetrievalOptions()
    assert settings.index_settings() == IndexSettings()
    exposed = {f.name for f in fields(RetrievalOptions)} & set(Settings.model_fields)
    assert {"fusion", "dense_weight", "sentence_weight", "candidates", "answerable_threshold"} <= exposed


def test_a_setting_reaches_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_DENSE_WEIGHT", "0.25")
    monkeypatch.setenv("RAG_FUSION", "rrf")
    monkeypatch.setenv("RAG_BM25_K1", "1.5")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.retrieval_options().dense_weight == 0.25 and settings.retrieval_options().fusion == "rrf"
    assert settings.retrieval_options().bm25_k1 == 1.5


def test_readme_settings_table_is_generated_from_the_code() -> None:
    readme = README.read_text("utf-8")
    assert readme_with_settings_table(readme) == readme, "run `python -m service.config` to regenerate it"
    for name in Settings.model_fields:
        assert f"`RAG_{name.upper()}`" in settings_table()


def test_every_setting_is_described() -> None:
    for name, info in Settings.model_fields.items():
        assert info.description, name


class RecordingEngine:
    """Stands in for the engine behind every surface and records what it was asked."""

    def __init__(self, real: Engine) -> None:
        self.real = real
        self.calls: list[tuple[str, int, str, int]] = []

    def search(self, query: str, k: int, mode: Mode, context: int = 0, *scope: Any) -> Any:
        self.calls.append((query, k, mode, context))
        return self.real.search(query, k, mode, context, *scope)

    async def search_async(self, query: str, k: int, mode: Mode, context: int = 0, *scope: Any) -> Any:
        return self.search(query, k, mode, context, *scope)

    async def search_documents_async(self, query: str, k: int, feedback: bool, *scope: Any) -> Any:
        self.calls.append((query, k, "documents", int(feedback)))
        return await self.real.search_documents_async(query, k, feedback, *scope)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_every_http_surface_takes_the_defaults_from_one_place(
    client: TestClient, fake_engine: Engine
) -> None:
    recorder = RecordingEngine(fake_engine)
    client.app.state.collections = Collections(recorder, fake_engine.settings)  # type: ignore[attr-defined, arg-type]
    client.post("/search", json={"query": "ports"})
    client.get("/search", params={"q": "ports"})
    client.post("/search/anthropic", json={"query": "ports"})
    client.post("/search/openai", json={"query": "ports"})
    client.post("/search/documents", json={"query": "ports"})
    RagClient(http=client).search("ports")
    RagClient(http=client).search_documents("ports")
    expected = ("ports", DEFAULT_K, DEFAULT_MODE, 0)
    assert recorder.calls == [expected] * 4 + [("ports", DEFAULT_DOCUMENT_K, "documents", 0)] + [expected] + [
        ("ports", DEFAULT_DOCUMENT_K, "documents", 0)
    ]


def test_the_mcp_and_cli_defaults_are_the_same(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from service import mcp_server
    from service.config import get_settings

    search_tool = inspect.signature(_mcp_search_function(mcp_server))
    assert search_tool.parameters["k"].default == DEFAULT_K
    assert search_tool.parameters["mode"].default == DEFAULT_MODE
    assert search_tool.parameters["context"].default == 0
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    get_settings.cache_clear()
    try:
        help_text = CliRunner().invoke(rag, ["ask", "--help"]).output
    finally:
        get_settings.cache_clear()
    assert f"[default: {DEFAULT_K}]" in help_text and f"[default: {DEFAULT_MODE.value}]" in help_text


def _mcp_search_function(mcp_server: Any) -> Any:
    server = mcp_server.build_mcp_server(lambda: None, Settings(_env_file=None))  # type: ignore[call-arg]
    return server._tool_manager.get_tool("search").fn


def test_the_api_schema_documents_the_same_defaults(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    search = schemas["SearchRequest"]["properties"]
    assert search["k"]["default"] == DEFAULT_K and search["mode"]["default"] == DEFAULT_MODE.value
    assert search["context"]["maximum"] == MAX_CONTEXT
    assert schemas["DocumentSearchRequest"]["properties"]["k"]["default"] == DEFAULT_DOCUMENT_K


def test_eval_and_bench_use_the_service_options() -> None:
    from eval.bench import __main__ as bench

    assert RetrievalOptions().candidates == bench.CANDIDATES
    assert json.loads(json.dumps(asdict(RetrievalOptions())))["fusion"] == "convex"


def test_the_http_client_imports_no_server_code() -> None:
    probe = "import json, sys, service.client, service.langchain_retriever; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", probe], cwd=PROJECT_ROOT))
    assert not {module for module in loaded if module.split(".")[0] in SERVER_MODULES}


@pytest.mark.parametrize("package", ["corpus", "index", "service"])
def test_dependencies_point_one_way(package: str) -> None:
    forbidden = {"corpus": ("index", "service", "eval"), "index": ("service", "eval"), "service": ("eval",)}
    for path in (PROJECT_ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden[package], f"{path} imports {name}"
