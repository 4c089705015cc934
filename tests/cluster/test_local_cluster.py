"""`rag cluster up` / `down` stop exactly the cluster they started: every process of its nodes is
gone, its temp dir removed, and another cluster on the machine keeps running."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from index.cluster.connect import alive_nodes, connected
from service.cli import cli as rag
from service.cluster.local import LocalCluster

pytestmark = pytest.mark.cluster


def descendants(pid: int) -> set[int]:
    """`pid` and every process below it (through /proc's parent links)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, its_parent in parents.items() if its_parent == parent]
        found.update(children)
        frontier.extend(children)
    return found


def test_down_stops_exactly_what_up_started(local_cluster: LocalCluster, tmp_path: Path) -> None:
    state = tmp_path / "cluster.json"
    started = CliRunner().invoke(rag, ["cluster", "up", "--workers", "1", "--state", str(state)])
    assert started.exit_code == 0, started.output
    cluster = LocalCluster.load(state)
    assert cluster is not None and cluster.running()
    processes = set().union(*(descendants(node.pid) for node in cluster.nodes))
    assert len(processes) > 4  # unshare, ray start, raylet, GCS, agents...
    assert (
        CliRunner().invoke(rag, ["cluster", "address", "--state", str(state)]).output.strip()
        == cluster.address
    )

    stopped = CliRunner().invoke(rag, ["cluster", "down", "--state", str(state)])
    assert stopped.exit_code == 0, stopped.output
    assert [pid for pid in processes if Path(f"/proc/{pid}").exists()] == []
    assert not Path(cluster.temp_dir).exists() and not state.exists()
    assert local_cluster.running()
    with connected(local_cluster.address):
        assert len(alive_nodes()) == 2  # the other cluster is untouched
