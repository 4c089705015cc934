"""The write path: the writer (upserts, deletes, builds, restores), group commit, merges and their policy,
building segment data from documents, converting the earlier format."""
