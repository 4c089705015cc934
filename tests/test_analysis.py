"""The text analyser (index/text/analysis.py): normalisation, CJK bigrams, English unchanged, no failure.

Hand-worked cases first, then the English rule compared with the one it replaced (lower-cased
``\\w\\w+`` words, bm25s's English stop words dropped, Snowball-stemmed) over the bundled corpus
and the eval questions, then properties over arbitrary strings, surrogates included.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from pathlib import Path

import bm25s
import pytest
import Stemmer
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus import Document
from index.embedding import HashingEmbedder
from index.settings import IndexSettings
from index.storage.store import IndexStore
from index.text.analysis import STOPWORDS, matched_terms, normalise, term_set, terms
from index.text.text_spans import sentence_spans
from index.write import writer as index_writer
from index.write.writer import IndexWriter

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_OLD_WORD = re.compile(r"\w\w+")
_OLD_STEMMER = Stemmer.Stemmer("english")
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()))  # lone surrogates included
MARK_OR_FORMAT = {"Mn", "Mc", "Me", "Cf"}


def old_rule(text: str) -> list[str]:
    """The BM25 tokens before the analyser, as the first analyser (version 1) computed them."""
    return _OLD_STEMMER.stemWords([w for w in _OLD_WORD.findall(text.lower()) if w not in STOPWORDS])


@pytest.mark.parametrize(
    ("variant", "plain"),
    [
        ("re\u0301sume\u0301", "résumé"),  # decomposed accents: NFKC composes them
        ("hippo\u00adpotamus", "hippopotamus"),  # soft hyphen
        ("hippo\u200bpota\u200dmus", "hippopotamus"),  # zero-width space, zero-width joiner
        ("pipe\u2060line\ufeff", "pipeline"),  # word joiner, byte-order mark
        ("\ufeffpeace", "peace"),  # a BOM at the start of a file
        ("ﬁnance", "finance"),  # ligature
        ("ＩＲＡＮ", "iran"),  # full width
        ("IRAN", "iran"),
        ("Straße", "STRASSE"),  # case folding, not lower-casing
        ("می\u200cشود", "میشود"),  # Persian with and without the zero-width non-joiner
        ("ｶﾀｶﾅ", "カタカナ"),  # half-width katakana
    ],
)
def test_variants_give_the_same_terms(variant: str, plain: str) -> None:
    assert terms(variant) == terms(plain)
    assert terms(variant)  # and they are not both empty


def test_hand_worked_terms() -> None:
    assert terms("re\u0301sume\u0301") == ["résumé"]
    assert terms("hippo\u00adpotamus") == ["hippopotamus"]
    assert terms("ﬁnance") == ["financ"]
    assert terms("ＩＲＡＮ") == ["iran"]
    assert terms("می\u200cشود") == ["میشود"]
    assert terms("Straße") == ["strass"]
    assert terms("m² µl") == ["m2", "μl"]  # superscript two, micro sign as Greek mu


def test_symbols_that_become_letters_still_separate_words() -> None:
    # NFKC turns "™" into "TM" and "₨" into "Rs"; glued on, they would hide the word before them.
    assert terms("ACAM2000™ vaccine") == ["acam2000", "tm", "vaccin"]
    assert terms("₨500") == ["rs", "500"]
    assert terms("¼20") == ["20"]  # "1⁄4" set apart, its digits single characters
    assert terms("h₂o₂ met¹⁴⁹") == ["h2o2", "met149"]  # one digit each: still in the word
    assert matched_terms("ACAM2000", "the ACAM2000™ vaccine") == ["acam2000"]


def test_cjk_runs_become_bigrams() -> None:
    assert terms("贸易协定") == ["贸易", "易协", "协定"]
    assert terms("中") == ["中"]  # a lone character is a unigram
    assert terms("贸易协定 trade agreements") == ["贸易", "易协", "协定", "trade", "agreement"]
    assert terms("2024年の日本経済") == ["2024", "年の", "の日", "日本", "本経", "経済"]
    assert terms("무역 협정") == ["무역", "협정"]
    assert terms("iPhone手机，中。") == ["iphon", "手机", "中"]  # punctuation ends a run
    assert terms("𠀀𠀁") == ["𠀀𠀁"]  # an ideograph outside the BMP


def test_combining_marks_stay_in_their_word() -> None:
    # \w alone would cut these at every vowel sign and drop the one-letter pieces.
    assert terms("हिन्दी भाषा") == ["हिन्दी", "भाषा"]
    assert terms("كَتَبَ") == ["كَتَبَ"]
    assert terms("+\u0308ve") == ["ve"]  # a mark with no letter before it belongs to no word


def test_normalise() -> None:
    assert normalise("ＩＲＡＮ ﬁnance") == "iran finance"
    assert normalise("hippo\u00adpotamus") == "hippopotamus"
    assert normalise("re\u0301sume\u0301") == "résumé"
    assert normalise("\ud800peace\udfff") == " peace "  # lone surrogates become spaces
    assert normalise("Peace\x00\x07") == "peace\x00\x07"  # controls separate words already


@pytest.mark.parametrize(
    "text",
    [
        "\ud800 peace",  # a lone surrogate: the stemmer raised on it (an HTTP 500 from a query)
        "peace\udc00pipeline",
        "\udfff",
        "\x00",
        "peace\x00pipeline\x07\x1b\x7f",
        "\U0010ffff\ue000",  # private use
        "\U000e0001peace",  # a tag character (format)
    ],
)
def test_broken_text_never_raises(text: str) -> None:
    found = terms(text)
    assert all(isinstance(term, str) and term for term in found)
    assert set(matched_terms(text, "peace pipeline")) <= {"peace", "pipeline"}
    matched_terms("peace pipeline", text)
    "".join(found).encode("utf-8")


def test_broken_text_keeps_its_words() -> None:
    assert terms("\ud800 peace") == ["peac"]
    assert terms("peace\udc00pipeline") == ["peac", "pipelin"]
    assert terms("peace\x00pipeline\x07") == ["peac", "pipelin"]
    assert matched_terms("\ud800 peace", "the peace pipeline") == ["peace"]


def test_matched_terms_are_the_query_words() -> None:
    assert matched_terms("Pipelines for PEACE", "the pipeline of peace") == ["pipelines", "peace"]
    assert matched_terms("ＩＲＡＮ", "Iran and Pakistan") == ["iran"]
    assert matched_terms("résumé", "Her re\u0301sume\u0301 was long") == ["résumé"]
    # A CJK query: its bigrams found in the text ("协议" is not "协定").
    assert matched_terms("贸易协定", "两国签署了贸易协议") == ["贸易", "易协"]
    assert matched_terms("贸易协定 trade", "贸易 and trade") == ["贸易", "trade"]


def english_sentences() -> list[str]:
    """Sentences of the bundled articles, and the questions and answers of every eval set."""
    texts = [
        path.read_text(encoding="utf-8")
        for path in sorted((PROJECT_ROOT / "corpus" / "articles").glob("*.md"))
    ]
    sentences = [text[start:end] for text in texts for start, end in sentence_spans(text)]
    for path in sorted((PROJECT_ROOT / "eval" / "sets").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                sentences += [item["question"], *item.get("answers", [])]  # dated_questions has none
    return sentences


def test_english_terms_are_those_of_the_old_rule() -> None:
    sentences = english_sentences()
    assert len(sentences) > 500
    # Typographic quotes and dashes (not ASCII) included: NFKC and case folding leave them as
    # they were.
    assert any(not sentence.isascii() for sentence in sentences)
    assert [terms(sentence) for sentence in sentences] == [old_rule(sentence) for sentence in sentences]


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_terms_are_those_of_the_old_rule_and_of_bm25s(text: str) -> None:
    assert terms(text) == old_rule(text)
    tokenized = bm25s.tokenize(
        [text], stopwords="en", stemmer=_OLD_STEMMER, return_ids=False, show_progress=False
    )
    assert terms(text) == tokenized[0]


@given(ANY_TEXT)
def test_any_string_is_analysed_without_error(text: str) -> None:
    found = terms(text)
    assert all(term and not any(character.isspace() for character in term) for term in found)
    assert term_set(text) == frozenset(found)
    matched = matched_terms(text, text)
    assert all(word == normalise(word) for word in matched)
    normalise(text).encode("utf-8")  # no surrogate survives


@settings(max_examples=500)
@given(ANY_TEXT)
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once
    assert terms(once) == terms(text)


# Code points that NFKC or case folding change, and every combining mark and format character:
# where composition, folding and mark reordering interact, which arbitrary text rarely reaches.
_CHANGED = [
    chr(code)
    for code in range(sys.maxunicode + 1)
    if not 0xD800 <= code <= 0xDFFF
    and (chr(code).casefold() != chr(code) or unicodedata.normalize("NFKC", chr(code)) != chr(code))
]
_MARKS_AND_FORMATS = [
    chr(code) for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)) in MARK_OR_FORMAT
]


@given(
    st.text(
        alphabet=st.one_of(
            st.sampled_from(_CHANGED), st.sampled_from(_MARKS_AND_FORMATS), st.sampled_from("aeijoIJ")
        ),
        max_size=8,
    )
)
def test_normalisation_is_idempotent_where_forms_interact(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once
    assert terms(once) == terms(text)
    assert normalise("İ\u0316") == normalise(normalise("İ\u0316"))  # folding leaves marks unordered


def test_normalisation_is_idempotent_on_every_code_point() -> None:
    for code in range(sys.maxunicode + 1):
        once = normalise(chr(code))
        assert normalise(once) == once, hex(code)


def test_every_code_point_is_analysed_without_error() -> None:
    for start in range(0, sys.maxunicode + 1, 4096):
        terms("".join(chr(code) for code in range(start, min(start + 4096, sys.maxunicode + 1))))


def test_a_change_of_analyser_rebuilds_the_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = IndexWriter(IndexStore(tmp_path), HashingEmbedder(), settings=IndexSettings())
    documents = [Document(id="cv", text="Her re\u0301sume\u0301 was long.")]
    first = writer.sync(documents)
    assert not writer.sync(documents).changed
    monkeypatch.setattr(index_writer, "ANALYSER_VERSION", 10**6)
    rebuilt = writer.sync(documents)
    assert rebuilt.changed and rebuilt.reader.version != first.reader.version
    assert rebuilt.reader.commit.segments[0].name != first.reader.commit.segments[0].name
