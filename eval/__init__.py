"""Retrieval evaluation: eval-set loaders, ranking metrics, the runner and the report table.

In scope: the project's own question sets (answers judged by gold substrings, so the sets survive
chunking changes), BEIR-layout data sets (a cached, ranking-only index of the corpus; relevance
judged per document), metrics and paired significance tests through ranx, TREC run files and the
text / JSON report behind `rag eval` and `make eval`.

`eval.cli` is where evaluation meets the service's settings: it holds `rag eval` and the `rag`
entry point that attaches it to the service's command line. The rest takes plain arguments.
Dependencies point one way: eval imports index and service, never the reverse. Left out: any
retrieval logic of its own: the same `Retriever` that answers queries is evaluated.
"""
