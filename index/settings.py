"""How an index is built: chunking, the vector index, BM25 parameters, sentence vectors.

Plain dataclasses with their defaults, the one place each is written (`service.config.Settings`
derives its defaults from them). They are recorded in every segment, so an index is always read
with the settings it was built with. Standard library only. Out of scope: query-time options
(`index.search.options`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Literal

ApproximateKind = Literal["ivf", "hnsw"]


@dataclass(frozen=True)
class ChunkerSettings:
    chunk_size: int = 200  # word pieces of the embedding model
    chunk_overlap: int = 40
    length_unit: str = "word-pieces"


@dataclass(frozen=True)
class VectorIndexSettings:
    approximate_threshold: int = 100_000  # a segment of this many chunks gets an IVF index
    approximate_kind: ApproximateKind = "ivf"
    # IVF: a query scans the `ivf_nprobe` nearest of `ivf_lists` cells; 0 = sized from the data
    # (`index.storage.vectors.ivf_lists_for`, `ivf_probes_for`).
    ivf_lists: int = 0
    ivf_nprobe: int = 0
    ivf_training_points_per_list: int = 40
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128


class SentenceVectors(StrEnum):
    """How answer-sentence vectors are made."""

    STANDALONE = "standalone"  # each sentence embedded on its own: a second pass, better retrieval
    CONTEXTUAL = "contextual"  # pooled from the chunk's own model pass: about twice the build speed


@dataclass(frozen=True)
class IndexSettings:
    chunker: ChunkerSettings = field(default_factory=ChunkerSettings)
    vectors: VectorIndexSettings = field(default_factory=VectorIndexSettings)
    title_in_embedding: bool = True
    title_in_bm25: bool = True
    sentence_vectors: SentenceVectors = SentenceVectors.STANDALONE

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexSettings:
        """Settings as recorded; keys this version does not know are ignored, so an index
        written by an older or newer version still loads."""
        values = _known(cls, data)
        return cls(
            **{
                **values,
                "chunker": ChunkerSettings(**_known(ChunkerSettings, data.get("chunker", {}))),
                "vectors": VectorIndexSettings(**_known(VectorIndexSettings, data.get("vectors", {}))),
                "sentence_vectors": SentenceVectors(
                    values.get("sentence_vectors", SentenceVectors.STANDALONE)
                ),
            }
        )

    def same_text_processing(self, other: IndexSettings) -> bool:
        """Whether two settings chunk, embed and index text alike (the vector index may differ)."""
        return (self.chunker, self.title_in_embedding, self.title_in_bm25, self.sentence_vectors) == (
            other.chunker,
            other.title_in_embedding,
            other.title_in_bm25,
            other.sentence_vectors,
        )


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}
