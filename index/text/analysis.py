"""The text analyser: how any text becomes BM25 terms, the same way for documents and queries.

One rule serves BM25 indexing and BM25 queries, the idf weights of query terms in answer spans,
the matched terms of explanations and the focus checks of expected answer types, so that a word
is always looked up the way it was indexed.

Normalisation (`normalise`), on a copy of the text:

* lone surrogates (which no encoding accepts, and on which the stemmer raises) become spaces;
* format characters (Unicode category Cf: soft hyphen, zero-width space and joiners, word
  joiner, byte-order mark, bidirectional marks) are removed: they are invisible and must not
  split a word, so ``hippo\\u00adpotamus`` is ``hippopotamus``;
* NFKC: decomposed accents composed (``re\\u0301sume\\u0301`` is ``résumé``), ligatures,
  full-width forms, superscripts and the like replaced by their plain letters and digits; a
  symbol or number form that becomes letters or several characters (``™`` is ``TM``, ``¼`` is
  ``1⁄4``) still separates words, as it did before;
* case folding (`str.casefold`: ``Straße`` is ``strasse``), then NFKC once more, since folding
  can undo it.

Tokenisation (`terms`) of the normalised text: a word is a word character (``\\w``) followed by
word characters and combining marks (``\\w`` alone would cut Devanagari or Arabic words at every
vowel sign). A run of Han, Hiragana, Katakana or Hangul characters, which such text writes
without spaces, gives its overlapping character bigrams (``贸易协定``: ``贸易``, ``易协``,
``协定``), a lone such character itself. Any other word of two or more characters is kept unless
it is an English stop word (bm25s's list) and stemmed with the Snowball English stemmer
(PyStemmer). For ASCII text the terms are exactly those of ``bm25s.tokenize(texts,
stopwords="en", stemmer=...)``, the rule used before this module.

The analyser never changes stored text: documents, chunk offsets and sentence offsets keep
pointing into the original text, and only the terms (in the BM25 index) come from the copy. It
accepts any Python string and never raises.

Out of scope: language detection and stemmers for other languages (a French or Persian word
matches by its exact normalised form), accent folding (``resume`` does not find ``résumé``),
dictionary word segmentation of Chinese and Japanese (bigrams instead: recall at some cost in
precision), Thai, Lao, Khmer or Burmese segmentation (a sentence without spaces stays one word),
simplified versus traditional Chinese, and the Turkish dotted capital I (case folding gives
``i`` plus a combining dot, which stays part of the word).
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Iterable

import bm25s
import Stemmer

# Recorded in every segment (index.storage.segments): a change to the rule must rebuild the BM25 index,
# since terms indexed one way are never found when looked up another way. Version 1 was the rule
# before this module (lower-cased words, no normalisation).
ANALYSER_VERSION = 2
STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN)

_STEMMER = Stemmer.Stemmer("english")

# Scripts written without spaces between words, by code point range (`unicodedata` has no script
# property). Only characters that are also word characters ever reach this test.
_CJK_RANGES = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x3005, 0x3007),  # ideographic iteration mark, closing mark, number zero
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3031, 0x3035),  # vertical kana repeat marks
    (0x3038, 0x303C),  # Hangzhou numerals ten to thirty, vertical iteration mark, masu mark
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3130, 0x318F),  # Hangul Compatibility Jamo
    (0x31F0, 0x31FF),  # Katakana Phonetic Extensions
    (0x3400, 0x4DBF),  # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xA960, 0xA97F),  # Hangul Jamo Extended-A
    (0xAC00, 0xD7FF),  # Hangul Syllables, Hangul Jamo Extended-B
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0x1AFF0, 0x1B16F),  # Kana Extended-B, Kana Supplement, Kana Extended-A, Small Kana Extension
    (0x20000, 0x3FFFF),  # Supplementary and Tertiary Ideographic Planes
)


def _character_class(ranges: Iterable[tuple[int, int]]) -> str:
    """The inside of a regex character class matching the code point ranges (inclusive)."""
    return "".join(
        f"\\U{first:08x}" if first == last else f"\\U{first:08x}-\\U{last:08x}" for first, last in ranges
    )


def _extend(runs: list[tuple[int, int]], code: int) -> None:
    """Add `code`, greater than any code point in `runs`, to the last run or as a new one."""
    if runs and runs[-1][1] == code - 1:
        runs[-1] = (runs[-1][0], code)
    else:
        runs.append((code, code))


def _ranges(codes: Iterable[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive code points, `codes` in increasing order: a short class."""
    runs: list[tuple[int, int]] = []
    for code in codes:
        _extend(runs, code)
    return runs


def _category_ranges() -> dict[str, list[tuple[int, int]]]:
    """Maximal runs of code points of each Unicode category, over all of Unicode (one pass)."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    for code in range(sys.maxunicode + 1):
        _extend(ranges.setdefault(unicodedata.category(chr(code)), []), code)
    return ranges


# From the same Unicode database as `re` and `unicodedata.normalize` (Python's own).
_CATEGORIES = _category_ranges()
_MARKS = sorted(r for category in ("Mn", "Mc", "Me") for r in _CATEGORIES.get(category, []))
_FORMAT = re.compile(f"[{_character_class(_CATEGORIES['Cf'])}]+")
_SURROGATE = re.compile("[\\ud800-\\udfff]")


def _is_word(character: str) -> bool:
    """What ``\\w`` matches in a str pattern."""
    return character.isalnum() or character == "_"


def _separates(character: str) -> bool:
    """Whether a number, punctuation, symbol or space character is set apart by spaces before
    NFKC, so that NFKC moves no word boundary: a symbol that becomes letters (``™`` is ``TM``;
    "ACAM2000™" gives "acam2000" and "tm", not "acam2000tm") or a number form that becomes several
    characters (``¼`` is ``1⁄4``; "¼20" must not give "420"). Superscript, subscript and circled
    digits become one digit and stay in their word as before ("h₂o₂" is "h2o2")."""
    form = unicodedata.normalize("NFKC", character)
    if form == character or not any(_is_word(c) for c in form):
        return False
    return not (_is_word(character) and len(form) == 1)


# Set apart by spaces before NFKC. Only numbers, punctuation, symbols and spaces are candidates.
_SEPARATING = re.compile(
    "["
    + _character_class(
        _ranges(
            sorted(
                code
                for category, runs in _CATEGORIES.items()
                if category[0] in "NPSZ"
                for first, last in runs
                for code in range(first, last + 1)
                if _separates(chr(code))
            )
        )
    )
    + "]"
)
# Runs of word characters and combining marks, starting with a word character (a mark after a
# space or a symbol has no letter to belong to). A class of BMP code points only is compiled to a
# bitmap; astral ranges are tried one by one on every other character, ~3x slower, so the full
# class is kept for text that has astral characters (the same runs either way).
_RUN_BMP = re.compile(f"\\w[\\w{_character_class(r for r in _MARKS if r[1] <= 0xFFFF)}]*")
_RUN = re.compile(f"\\w[\\w{_character_class(_MARKS)}]*")
_ASTRAL = re.compile("[\\U00010000-\\U0010ffff]")
_CJK_RUNS = re.compile(f"([{_character_class(_CJK_RANGES)}]+)")  # captured: re.split keeps them


def normalise(text: str) -> str:
    """``NFKC(casefold(NFKC(t)))``, t the text with surrogates as spaces, format characters
    removed and spaces around symbols and number forms that NFKC would glue on (`_separates`)."""
    if text.isascii():
        # The same result, ~20x faster: ASCII has no format characters or surrogates, NFKC leaves
        # it alone and case folding it is lower-casing.
        return text.lower()
    text = _SEPARATING.sub(r" \g<0> ", _FORMAT.sub("", _SURROGATE.sub(" ", text)))
    # NFKC again after folding: folding can decompose ("İ" is "i" and a combining dot) and leave
    # marks out of canonical order, and the result must be a fixed point (normalise(normalise(x))
    # == normalise(x)) for a query and a text to agree.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def terms(text: str) -> list[str]:
    """The BM25 terms of `text`, in text order: stems of its words and bigrams of its CJK runs."""
    return _units(normalise(text))[1]


@functools.lru_cache(maxsize=50_000)
def term_set(text: str) -> frozenset[str]:
    """The terms of `text` as a set, cached: each query looks again at the sentences of the
    chunks it hits, and popular chunks come back query after query."""
    return frozenset(terms(text))


def matched_terms(query: str, text: str) -> list[str]:
    """The query's words (normalised, stop words left out) whose stem occurs in `text`, and the
    bigrams of the query's CJK runs that occur in it: what an explanation shows the reader."""
    found = term_set(text)
    return [surface for surface, term in _query_units(query) if term in found]


@functools.lru_cache(maxsize=4096)
def _query_units(query: str) -> tuple[tuple[str, str], ...]:
    """Distinct (surface, term) pairs of `query`, cached: asked once per hit."""
    return tuple(dict.fromkeys(zip(*_units(normalise(query)), strict=True)))


def _units(normalised: str) -> tuple[list[str], list[str]]:
    """(surfaces, terms) of already normalised text, position by position: a word and its stem,
    or a CJK bigram (or lone character) as both."""
    if normalised.isascii():
        runs, cjk = _RUN_BMP.findall(normalised), False
    else:
        runs = (_RUN if _ASTRAL.search(normalised) else _RUN_BMP).findall(normalised)
        cjk = _CJK_RUNS.search(normalised) is not None
    if not cjk:  # most text: no per-run work beyond the stop list
        words = [run for run in runs if len(run) > 1 and run not in STOPWORDS]
        return words, _STEMMER.stemWords(words)
    surfaces: list[str] = []
    is_word: list[bool] = []
    for run in runs:
        # re.split with a captured pattern alternates pieces outside CJK runs with CJK runs.
        for index, piece in enumerate(_CJK_RUNS.split(run)):
            if index % 2:
                grams = [piece] if len(piece) == 1 else [piece[i : i + 2] for i in range(len(piece) - 1)]
                surfaces += grams
                is_word += [False] * len(grams)
            elif len(piece) > 1 and piece not in STOPWORDS:
                surfaces.append(piece)
                is_word.append(True)
    # Stems in one batch, which is faster than one call a word.
    stems = iter(
        _STEMMER.stemWords([surface for surface, word in zip(surfaces, is_word, strict=True) if word])
    )
    return surfaces, [
        next(stems) if word else surface for surface, word in zip(surfaces, is_word, strict=True)
    ]
