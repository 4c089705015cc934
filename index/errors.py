"""Named errors of the index layer; the service turns each into a clear HTTP or CLI message."""


class IndexError_(Exception):
    """Base class (named with a trailing underscore so it never shadows the builtin)."""


class IndexNotFoundError(IndexError_):
    """No index has been built in the configured directory yet."""


class IndexMismatchError(IndexError_):
    """The saved index was built with another model or settings than the ones configured."""


class IndexCorruptError(IndexError_):
    """A file of the saved index is missing or does not match its recorded checksum."""


class EmbeddingModelError(IndexError_):
    """The embedding model could not be loaded."""
