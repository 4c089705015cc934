"""Bulk ingest jobs: many documents in one request, committed in batches by a worker thread.

`records` is the job's state and its on-disk format, `inputs` turns a request body into a job's
input and its lines into documents, `store` keeps records and inputs durably beside the index,
`runner` works through the queue, `routes` is the HTTP API (`/jobs`, and the same under
`/collections/{collection}`). docs/operations.md, "Bulk ingest jobs", is the operator's view.
"""
