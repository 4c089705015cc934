"""The index on disk: file rules (atomic writes, fsync, checksums), commit points and CURRENT, the directory
with its snapshots, immutable segments and their formats (arrays, BM25 postings, vector indexes). What to
write is decided in `index.write`; how to search it in `index.search`."""
