"""Expected answer types: what a question asks for, and whether a sentence offers it."""

from __future__ import annotations

import pytest

from index.answer_types import ExpectedAnswer, expected_answer, offers_answer


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How many nuclear warheads does Pakistan have?", ExpectedAnswer("quantity", "nuclear")),
        ("How much do Iran and Pakistan want trade to grow?", ExpectedAnswer("quantity", None)),
        ("What is the estimated cost of the gas pipeline?", ExpectedAnswer("quantity", "cost")),
        ("What is Pakistan's GDP?", ExpectedAnswer("quantity", "gdp")),
        ("How long did the war last?", ExpectedAnswer("duration")),
        ("In what year was the ECO founded?", ExpectedAnswer("year")),
        ("On what date did Larijani arrive?", ExpectedAnswer("date")),
        ("What projects could Larijani's visit accelerate?", None),
        ("Who is Syed Ali Abbas?", None),
    ],
)
def test_expected_answer(question: str, expected: ExpectedAnswer | None) -> None:
    assert expected_answer(question) == expected


def test_offers_answer_needs_the_value_and_the_focus() -> None:
    warheads = ExpectedAnswer("quantity", "nuclear")
    assert not offers_answer("Pakistan, as a nuclear-armed state, would deter attacks.", warheads)
    assert not offers_answer("The 12-day war changed the region.", warheads)
    assert offers_answer("Pakistan has about 170 nuclear warheads.", warheads)
    assert offers_answer("They signed twelve cooperation documents.", ExpectedAnswer("quantity", "cooper"))
    assert not offers_answer("This one was negotiated at both levels.", ExpectedAnswer("quantity"))
    assert offers_answer("relief from decades of economic sanctions", ExpectedAnswer("duration"))
    assert not offers_answer("relief from decades of economic sanctions", ExpectedAnswer("quantity"))
    assert offers_answer("It was founded in 1985.", ExpectedAnswer("year"))
    assert offers_answer("He arrived on 3 August.", ExpectedAnswer("date"))
    assert offers_answer("Anything at all.", None)
