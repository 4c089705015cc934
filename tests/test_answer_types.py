"""Expected answer types: what a question asks for, and whether a sentence offers it."""

from __future__ import annotations

import pytest

from index.search.answer_types import ExpectedAnswer, expected_answer, offers_answer


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How many nuclear warheads does Pakistan have?", ExpectedAnswer("quantity", "nuclear")),
        ("How much do Iran and Pakistan want trade to grow?", ExpectedAnswer("quantity", None)),
        ("What is the estimated cost of the gas pipeline?", ExpectedAnswer("quantity", "cost")),
        ("What is Pakistan's GDP?", ExpectedAnswer("quantity", "gdp")),
        ("How long did the war last?", ExpectedAnswer("duration")),
        ("In what year was the ECO founded?", ExpectedAnswer("time")),
        ("On what date did Larijani arrive?", ExpectedAnswer("time")),
        ("When was the Duchy of Normandy founded?", ExpectedAnswer("time")),
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
    assert offers_answer("relief from decades of economic sanctions", ExpectedAnswer("duration"))
    assert not offers_answer("relief from decades of economic sanctions", ExpectedAnswer("quantity"))
    assert offers_answer("It was founded in 1985.", ExpectedAnswer("time"))
    assert offers_answer("He arrived on 3 August.", ExpectedAnswer("time"))
    assert offers_answer("Anything at all.", None)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        # Plainly answered questions that rules written for one set's wording used to flag.
        (
            "When was the Duchy of Normandy founded?",
            "The Duchy of Normandy, which began in 911 as a fiefdom, was established by treaty.",
        ),
        ("In what year did the Normans invade at Bannow Bay?", "The Normans landed at Bannow Bay in 1169."),
        (
            "How many outputs are expected for each input in a function problem?",
            "A function problem expects a single output for every input.",
        ),
        ("Who was Margaret's husband?", "King Malcolm III of Scotland married Edgar's sister Margaret."),
        ("Who commissioned the Tapestry?", "Bishop Odo is thought to have had it made."),
    ],
)
def test_plain_answers_offer_the_type_asked_for(question: str, answer: str) -> None:
    assert offers_answer(answer, expected_answer(question))


def test_name_questions_expect_a_name_the_question_does_not_give() -> None:
    who = expected_answer("Who won Pakistan's most recent general election?")
    assert who is not None and who.type == "name" and who.focus is None
    assert not offers_answer("For Pakistan, such a development could also enhance its standing.", who)
    assert offers_answer("Imran Khan's party won the most seats.", who)
    assert offers_answer(
        "Syed Ali Abbas has told Iran Daily that such dialogues improve stability.",
        expected_answer("Who did Iran Daily interview about security dialogues?"),
    )


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
