"""Documents and the loaders that read them from disk.

In scope: the `Document` model (one canonical text per document; every offset anywhere in the
system is a character offset into it), removal of print/web artefacts, publication dates in ISO
8601 (`corpus.dates`), and loading `.txt`, `.md` (YAML front matter), `.html` news pages and
BEIR-style `.jsonl` files. Out of scope: chunking, embedding and search,
which live in `index/`.
"""

from corpus.documents import Document, content_hash
from corpus.errors import CorpusError
from corpus.loading import SUPPORTED_SUFFIXES, load_corpus, load_documents_file, parse_file_bytes

__all__ = [
    "SUPPORTED_SUFFIXES",
    "CorpusError",
    "Document",
    "content_hash",
    "load_corpus",
    "load_documents_file",
    "parse_file_bytes",
]
