"""`rag build --shards` writes a sharded index; `rag serve --cluster` checks it before any cluster
is contacted."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from index.errors import IndexNotFoundError
from index.search.reader import IndexReader
from index.sharding.assignment import shard_of
from index.sharding.layout import ShardedLayout
from service.cli import cli

pytest.importorskip("ray")
NO_CLUSTER = "127.0.0.1:1"  # never contacted: each command below stops before


def test_serving_a_folder_without_a_sharded_index_says_so(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["serve", "--cluster", NO_CLUSTER])
    assert result.exit_code == 1
    assert f"no sharded index in {tmp_path / 'index'}" in result.output


def test_serving_with_another_shard_count_than_the_index_is_refused(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ShardedLayout.open_or_create(tmp_path / "index", 3)
    monkeypatch.setenv("RAG_SHARDS", "2")
    result = runner.invoke(cli, ["serve", "--cluster", NO_CLUSTER])
    assert result.exit_code == 1
    assert "3" in result.output and "2" in result.output, result.output


def test_build_shards_writes_each_document_to_its_shard(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_EMBEDDER", "hashing")
    built = runner.invoke(cli, ["build", "--shards", "3"])
    assert built.exit_code == 0, built.output
    assert "built sharded index" in built.output and "added 3" in built.output
    layout = ShardedLayout.open(tmp_path / "index", 3)
    held = {
        document_id: shard
        for shard, store in enumerate(layout.stores())
        if store.current_pointer() is not None
        for document_id in IndexReader.open(store).document_ids()
    }
    assert len(held) == 3 and all(shard == shard_of(document_id, 3) for document_id, shard in held.items())
    again = runner.invoke(cli, ["build", "--shards", "3"])
    assert again.exit_code == 0 and "nothing to do" in again.output
    before = sorted(path.name for path in (tmp_path / "index").iterdir())
    other = runner.invoke(cli, ["build", "--shards", "2"])
    assert other.exit_code == 1 and "has 3 shards but 2 were asked for" in other.output
    assert sorted(path.name for path in (tmp_path / "index").iterdir()) == before


def test_build_shards_of_a_named_collection_writes_its_own_sharded_index(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_EMBEDDER", "hashing")
    built = runner.invoke(cli, ["build", "--shards", "2", "--collection", "news"])
    assert built.exit_code == 0, built.output
    assert f"built sharded index in {tmp_path / 'collections' / 'news'} (2 shards" in built.output
    layout = ShardedLayout.open(tmp_path / "collections" / "news", 2)
    held = [
        document_id
        for store in layout.stores()
        if store.current_pointer() is not None
        for document_id in IndexReader.open(store).document_ids()
    ]
    assert len(held) == 3
    assert not (tmp_path / "index").exists()  # the default collection is not touched
    other = runner.invoke(cli, ["build", "--shards", "3", "--collection", "news"])
    assert other.exit_code == 1 and "has 2 shards but 3 were asked for" in other.output


def test_build_shards_refuses_an_ordinary_index(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(cli, ["build"]).exit_code == 0
    refused = runner.invoke(cli, ["build", "--shards", "2"])
    assert refused.exit_code == 1 and "holds an ordinary index" in refused.output


def test_a_serve_config_builds_the_application_from_its_args(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray.serve import Application

    from service.sharded.deployments import application_from_args

    with pytest.raises(IndexNotFoundError):
        application_from_args({"index_dir": str(tmp_path / "index")})
    monkeypatch.setenv("RAG_EMBEDDER", "hashing")
    assert runner.invoke(cli, ["build", "--shards", "2"]).exit_code == 0
    built = application_from_args({"index_dir": str(tmp_path / "index"), "shard_replicas": 2})
    assert isinstance(built, Application)
