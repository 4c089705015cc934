"""Errors raised while reading a corpus."""


class CorpusError(ValueError):
    """A corpus file or document that cannot be used; the message says which and why."""


class InvalidDateError(CorpusError):
    """A publication date that cannot be read without guessing; the message names the value and
    the forms accepted (`corpus.dates`)."""
