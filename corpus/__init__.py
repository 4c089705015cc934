"""Documents and the loaders that read them from disk.

In scope: the `Document` model (one canonical text per document; every offset anywhere in the
system is a character offset into it), removal of print/web artefacts, and loading `.txt`, `.md`
(YAML front matter) and BEIR-style `.jsonl` files. Out of scope: chunking, embedding and search,
which live in `index/`.
"""

from corpus.documents import Document, content_hash
from corpus.errors import CorpusError
from corpus.loading import load_corpus, load_documents_file, parse_document_bytes

__all__ = [
    "CorpusError",
    "Document",
    "content_hash",
    "load_corpus",
    "load_documents_file",
    "parse_document_bytes",
]
