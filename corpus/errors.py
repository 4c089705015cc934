"""Errors raised while reading a corpus."""


class CorpusError(ValueError):
    """A corpus file or document that cannot be used; the message says which and why."""
