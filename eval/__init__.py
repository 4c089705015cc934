"""Retrieval evaluation: eval-set loaders, ranking metrics, the runner and the report table.

In scope: the project's own question sets (answers judged by gold substrings, so the sets survive
chunking changes), BEIR-layout data sets (a cached, ranking-only index of the corpus; relevance
judged per document), metrics and paired significance tests through ranx, TREC run files and the
text / JSON report behind `rag eval` and `make eval`.

Left out: settings (read only in `service/`; everything here takes plain arguments), the HTTP
command line (in `service/cli_eval.py`) and any retrieval logic of its own: the same
`Retriever` that answers queries is evaluated.
"""
