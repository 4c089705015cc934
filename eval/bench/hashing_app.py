"""The app the write and ingest benchmarks serve: the real one, with the fake embedder at 384 dims.

`RAG_EMBEDDER=hashing` gives the 64-dimensional fake; these benchmarks want the real model's
size (384) so that vectors weigh on disk and in memory what they would in production, without
the model's encoding time. Run as
`python -m uvicorn eval.bench.hashing_app:create_app --factory --host 127.0.0.1 --port N`;
every other setting is read from `RAG_*` as usual. The dimension can be changed with
`BENCH_HASHING_DIMENSION`. Out of scope: anything but swapping the embedder (the engine, its
background merges and every route are the service's own).
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from index.embedding import HashingEmbedder
from index.storage.store import IndexStore
from service.app import create_app as create_real_app
from service.config import get_settings
from service.engine import Engine

HASHING_APP = "eval.bench.hashing_app:create_app"
DIMENSION = 384  # all-MiniLM-L6-v2's


def create_app() -> FastAPI:
    settings = get_settings()
    embedder = HashingEmbedder(int(os.environ.get("BENCH_HASHING_DIMENSION", DIMENSION)))
    return create_real_app(settings, engine=Engine(settings, embedder, IndexStore(settings.index_dir)))
