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
        ("Who is Syed Ali Abbas?", None),  # asks for a description, not a name
        ("whose rights did Pakistan say must be upheld?", None),
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


def test_name_questions_expect_a_name_the_question_does_not_give() -> None:
    who = expected_answer("Who won Pakistan's most recent general election?")
    assert who is not None and who.type == "name" and who.focus is None
    assert not offers_answer("For Pakistan, such a development could also enhance its standing.", who)
    assert offers_answer("Imran Khan's party won the most seats.", who)
    assert offers_answer(
        "Syed Ali Abbas has told Iran Daily that such dialogues improve stability.",
        expected_answer("Who did Iran Daily interview about security dialogues?"),
    )


def test_who_questions_need_a_name_that_speaks_of_their_topic() -> None:
    who = expected_answer("Who won Pakistan's most recent general election?")
    assert who is not None and who.topic == {"won", "recent", "general", "elect"}
    # A new name alone does not answer: the sentence must share a content word of the question,
    # and "most" (a function word) does not count as one.
    assert not offers_answer("Iran, more than most, has experienced such volatility.", who)
    assert not offers_answer("Larijani visited Islamabad last week.", who)
    assert offers_answer("The election was won by Imran Khan's party.", who)


def test_name_of_a_role_needs_the_name_next_to_the_role() -> None:
    ambassador = expected_answer("What is the name of Iran's ambassador to Pakistan?")
    assert ambassador is not None and (ambassador.type, ambassador.focus) == ("name", "ambassador")
    assert offers_answer(
        "Iran’s ambassador to Pakistan, Reza Amiri Moghadam, welcomed the visit.", ambassador
    )
    assert offers_answer("Ambassador Moghadam welcomed the visit.", ambassador)
    # A name three words or more away from the role is not the role's name.
    assert not offers_answer(
        "Iran’s ambassador to Pakistan has described Larijani’s visit as historic.", ambassador
    )
    assert not offers_answer("The ambassador to Pakistan spoke.", ambassador)
