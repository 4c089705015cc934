"""Cluster mode, service side (issue 22): a local Ray cluster (`local`) and its commands
(`commands`: `rag cluster up|down|address`). The build itself is `rag build --cluster`
(service/cli.py, over index/cluster). Sharded serving is not here yet."""
