"""Chunks, embeddings, the FAISS and BM25 indexes, and retrieval over them.

In scope: turning `corpus.Document`s into chunks with exact offsets, embedding them, saving the
whole index as one self-describing directory (`index.storage.store`), and answering queries with fused,
explained, de-duplicated hits (`index.search.retrieval`). Out of scope: settings, HTTP and the CLI
(`service/`), and metrics (`eval/`). Everything here takes plain arguments.
"""
