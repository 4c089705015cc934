"""Cluster mode, service side: a local Ray cluster (`local`) and its commands (`commands`:
`rag cluster up|down|address`). The build is `rag build --cluster` (service/cli.py, over
index/cluster); sharded serving is `service.sharded`.

`use_ray_defaults` is the one place the environment Ray reads is given its defaults, before any
Ray process starts: no usage statistics, and token authentication off unless the environment
asks for it (`RAY_AUTH_MODE=token`). Ray 2.60 turns token authentication on by itself when a
local `ray.init()` writes ~/.ray/auth_token or a `ray start` finds one, so a cluster and the
processes attaching to it would otherwise disagree, depending on what ran before on the machine.
"""

import os

RAY_DEFAULTS = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def use_ray_defaults() -> None:
    """Give this process's environment (and so its children's) Ray's defaults, unless set."""
    for name, value in RAY_DEFAULTS.items():
        os.environ.setdefault(name, value)
