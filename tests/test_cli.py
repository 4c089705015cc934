"""The `rag` CLI: build (and its no-op), ask, and clear errors instead of tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from index.search.reader import IndexReader
from index.storage.store import IndexStore
from service import cli as cli_module
from service.config import Settings
from service.engine import Engine


def test_build_then_rebuild_is_a_no_op(runner: CliRunner) -> None:
    first = runner.invoke(cli_module.cli, ["build"])
    assert first.exit_code == 0, first.output
    assert "3 documents" in first.output and "added 3" in first.output
    second = runner.invoke(cli_module.cli, ["build"])
    assert second.exit_code == 0
    assert "nothing to do" in second.output and "3 documents in all" in second.output


def test_build_from_paths(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text("Gwadar Port\nThe port of Gwadar opened a new berth.", "utf-8")
    result = runner.invoke(cli_module.cli, ["build", str(tmp_path / "one.txt")])
    assert result.exit_code == 0, result.output
    assert "1 documents" in result.output


def test_ask_human_and_json(runner: CliRunner) -> None:
    runner.invoke(cli_module.cli, ["build"])
    human = runner.invoke(
        cli_module.cli, ["ask", "Peace Pipeline maritime initiatives", "-k", "2", "--mode", "bm25"]
    )
    assert human.exit_code == 0, human.output
    assert "[1] Larijani's visit to Pakistan (Nournews commentary) (Nournews)" in human.output
    assert ">>This trip could also accelerate" in human.output
    as_json = runner.invoke(cli_module.cli, ["ask", "Peace Pipeline", "--json", "-k", "1"])
    body = json.loads(as_json.output)
    assert body["results"][0]["document"]["id"] == "nournews-larijani-visit"
    assert set(body) == {
        "query",
        "mode",
        "index_version",
        "answerable",
        "confidence",
        "results",
        "filter",
        "filter_from_question",
    }


def test_errors_are_messages_not_tracebacks(runner: CliRunner, tmp_path: Path) -> None:
    no_index = runner.invoke(cli_module.cli, ["ask", "anything"])
    assert no_index.exit_code == 1
    assert "Error: no index in" in no_index.output and "rag build" in no_index.output
    assert "Traceback" not in no_index.output
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe broken")
    broken = runner.invoke(cli_module.cli, ["build", str(bad)])
    assert broken.exit_code == 1 and "not valid UTF-8" in broken.output
    runner.invoke(cli_module.cli, ["build"])
    assert runner.invoke(cli_module.cli, ["ask", "x", "-k", "0"]).exit_code == 2
    assert runner.invoke(cli_module.cli, ["ask", "x", "--mode", "nope"]).exit_code == 2
    # Undecodable bytes in argv reach Python as lone surrogates.
    surrogate = runner.invoke(cli_module.cli, ["ask", "\udcff peace"])
    assert surrogate.exit_code == 2 and "not valid Unicode" in surrogate.output


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_PORT", "9000")
    monkeypatch.setenv("RAG_FUSION", "convex")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.port == 9000
    assert settings.retrieval_options().fusion == "convex"


def test_add_reads_directories_as_build_does(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(cli_module.cli, ["build"]).exit_code == 0
    folder = tmp_path / "new-articles"
    (folder / "nested").mkdir(parents=True)
    (folder / "one.md").write_text("---\ntitle: One\n---\nThe first new article.", "utf-8")
    (folder / "nested" / "two.txt").write_text("Two\nThe second new article.", "utf-8")
    (folder / "notes.pdf").write_bytes(b"%PDF")  # ignored, as `rag build` ignores it
    result = runner.invoke(cli_module.cli, ["add", str(folder)])
    assert result.exit_code == 0, result.output
    assert "added 2" in result.output and "5 documents" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = runner.invoke(cli_module.cli, ["add", str(empty)])
    assert refused.exit_code == 1 and "no documents found" in refused.output


def test_add_commits_in_batches_and_lists_the_refused_files(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service import bulk_add

    monkeypatch.setattr(bulk_add, "BATCH_DOCUMENTS", 2)
    commits: list[int] = []
    upsert = Engine.upsert
    monkeypatch.setattr(Engine, "upsert", lambda self, docs: commits.append(len(docs)) or upsert(self, docs))
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(5):
        (folder / f"a{number}.md").write_text(f"---\ntitle: A{number}\n---\nArticle {number}.", "utf-8")
    (folder / "bad.txt").write_bytes(b"\xff\xfe not utf-8")
    (folder / "dup.jsonl").write_text('{"_id": "a1", "text": "Same id as a1.md."}\n', "utf-8")
    result = runner.invoke(cli_module.cli, ["add", str(folder)])
    assert result.exit_code == 1, result.output
    assert "added 5" in result.output and "2 of 7 file(s) refused" in result.output
    assert "bad.txt: not valid UTF-8" in result.output and "duplicate document id 'a1'" in result.output
    assert "Traceback" not in result.output and commits == [2, 2, 1]
    index = IndexReader.open(IndexStore(tmp_path / "index"))
    assert {f"a{number}" for number in range(5)} <= set(index.document_ids())
