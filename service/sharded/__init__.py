"""Sharded serving (issue 22): the service's API over a sharded index (`index.sharding`) whose
shards run as Ray Serve deployments.

* `engine`: `ShardedEngine`, the `Engine` the routes call, searching through
  `index.sharding.coordinator.ShardedSearcher` with a remote fan-out; what reaches the index
  other than through the routes answers `NotSupportedInClusterModeError` (501);
* `documents`, `snapshots`: its writes, document reads, optimize, snapshots and recovery, through
  each shard's writer (`writers`) and query replicas;
* `jobs`: bulk ingest jobs, stored and run by one deployment for the whole service;
* `deployments`: the Serve deployments (one per shard, one writer per shard, the question
  encoder, the jobs, the ingress, which is `service.app.create_app`'s app itself) and `deploy`,
  what `rag serve --cluster` runs.

Only `deployments` and `writers` import Ray. Out of scope: building a sharded index
(`index.sharding.writer`), starting a cluster (`service.cluster`, the build side).
"""
