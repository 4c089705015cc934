"""Sharded serving (issue 22): the service's API over a sharded index (`index.sharding`) whose
shards run as Ray Serve deployments.

* `engine`: `ShardedEngine`, the `Engine` the routes call, searching through
  `index.sharding.coordinator.ShardedSearcher` with a remote fan-out; what it cannot serve yet
  answers `NotSupportedInClusterModeError` (501);
* `deployments`: the Serve deployments (one per shard, the question encoder, the ingress, which
  is `service.app.create_app`'s app itself) and `deploy`, what `rag serve --cluster` runs.

Only `deployments` imports Ray. Out of scope: building a sharded index (`index.sharding.writer`),
starting a cluster (`service.cluster`, the build side).
"""
