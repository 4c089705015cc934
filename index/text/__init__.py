"""Text processing: the analyser BM25 uses for documents and queries alike, chunking, sentence spans and the
metadata text searched beside a document. No index files, no ranking."""
