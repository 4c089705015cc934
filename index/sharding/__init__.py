"""A sharded index: documents spread over N ordinary indexes by a stable hash of their id.

* `assignment`: which shard owns a document (`shard_of`);
* `layout`: the root folder, its manifest and one `IndexStore` per shard;
* `writer`: writes split by owning shard, each shard committing on its own;
* `messages`: the plain data a shard is sent and answers with (picklable: a remote call's);
* `shard`: the shard side of a search (`Shard.statistics`, `Shard.candidates`);
* `gathered`: the shards' candidates as one `PassageIndex` the retrieval stages read;
* `coordinator`: fans a search out to the shards and runs the unchanged stages over the result.

Out of scope: serving shards in other processes or machines (a Ray Serve deployment exposes
`Shard`'s methods as they are), and the HTTP service.
"""
