"""`rag serve --cluster`: the sharded index is checked before any cluster is contacted."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

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
