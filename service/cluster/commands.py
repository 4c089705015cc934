"""`rag cluster up|down|address`: the local Ray cluster of `make cluster` (service.cluster.local).

The state file (default .rag/cluster.json) records what `up` started, so `down`, from any later
process, stops exactly that. Out of scope: clusters of several machines (start their nodes with
`ray start`, then `rag build --cluster HEAD:PORT`), serving.
"""

from __future__ import annotations

from pathlib import Path

import click

from service.cluster.local import (
    DEFAULT_STATE_FILE,
    ClusterStartError,
    LocalCluster,
    start_cluster,
    stop_cluster,
)

state_option = click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_STATE_FILE,
    show_default=True,
    help="Where the running cluster is recorded.",
)


@click.group()
def cluster() -> None:
    """A local Ray cluster: a head and worker nodes as separate processes on this machine.

    \b
    Examples:
      rag cluster up                          # start it (a no-op when it runs)
      rag build --cluster "$(rag cluster address)"
      rag cluster down                        # stop exactly what `up` started
    """


@cluster.command()
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True, help="Worker nodes.")
@state_option
def up(workers: int, state_file: Path) -> None:
    """Start a head and WORKERS worker nodes, each in its own PID namespace, and record them.

    \b
    Needs root (or user namespaces) for `unshare`. Prints the head's address.
    \b
    Examples:
      rag cluster up
      rag cluster up --workers 2 --state /tmp/my-cluster.json
    """
    running = LocalCluster.load(state_file)
    if running is not None and running.running():
        click.echo(f"a local cluster already runs at {running.address} ({state_file})")
        return
    if running is not None:  # a cluster that is gone (a reboot): drop what is left of it
        stop_cluster(running)
    try:
        started = start_cluster(workers=workers)
    except (ClusterStartError, OSError) as error:
        raise click.ClickException(f"the local cluster did not start: {error}") from error
    started.save(state_file)
    click.echo(f"local cluster at {started.address}: {1 + workers} nodes, recorded in {state_file}")


@cluster.command()
@state_option
def down(state_file: Path) -> None:
    """Stop exactly the cluster recorded in the state file, and wait until it is gone.

    \b
    Example:
      rag cluster down
    """
    running = LocalCluster.load(state_file)
    if running is None:
        click.echo(f"no local cluster recorded in {state_file}: nothing to stop")
        return
    stop_cluster(running)
    state_file.unlink()
    click.echo(f"stopped the local cluster at {running.address} ({len(running.nodes)} nodes)")


@cluster.command()
@state_option
def address(state_file: Path) -> None:
    """Print the running local cluster's address (for `rag build --cluster`).

    \b
    Example:
      rag build --cluster "$(rag cluster address)"
    """
    running = LocalCluster.load(state_file)
    if running is None or not running.running():
        raise click.ClickException(f"no local cluster runs ({state_file}): start one with `rag cluster up`")
    click.echo(running.address)
