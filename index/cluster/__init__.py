"""Cluster mode, build side (issue 22): embedding a build on a Ray cluster with Ray Data.

`connect` reaches a cluster (a named error, fast, when it cannot) and checks that a storage path
is the same, writable directory on every node; `embedding` is the Ray Data pipeline (documents ->
chunk layout -> an actor pool of embedding models) and `ClusterEmbedder`, the `Embedder` the
ordinary writer (`index.write.writer`) builds with, so a cluster build commits through the same
protocol as any other and writes an ordinary index; `streaming` hands the pipeline's output to
the writer one segment at a time. Plain arguments only, no settings; Ray is imported by
`connect` and `embedding`, never by this module, so the constants below cost nothing to import.
Out of scope: starting clusters (service/cluster), sharded indexes and serving.
"""

DEFAULT_EMBED_ACTORS = 2  # one model per actor; one actor per node of the local two-node cluster
CONNECT_TIMEOUT_SECONDS = 5.0  # to open a TCP connection to the cluster's address
PROBE_TIMEOUT_SECONDS = 60.0  # for every node to run its storage probe
