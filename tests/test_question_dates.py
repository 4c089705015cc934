"""Time ranges stated in a question (index/text/dates.py) and the eval set that measures them."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from eval.dated_questions import DEFAULT_SET, figures, load_dated_questions, run
from eval.sets import EvalSetError
from index.text.dates import DateRange, date_range_in

AS_OF = datetime.date(2026, 12, 3)  # a Thursday
D = datetime.date


def _range(question: str, as_of: datetime.date = AS_OF) -> tuple[D | None, D | None] | None:
    found = date_range_in(question, as_of)
    return None if found is None else (found.after, found.before)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # a cue and a period: the whole period, or one side of it
        ("What was agreed in November 2025?", (D(2025, 11, 1), D(2025, 11, 30))),
        ("What happened during 2024?", (D(2024, 1, 1), D(2024, 12, 31))),
        ("What was said on 3 March 2025?", (D(2025, 3, 3), D(2025, 3, 3))),
        ("What changed since 1 October 2025?", (D(2025, 10, 1), None)),
        ("What changed from May 2024?", (D(2024, 5, 1), None)),
        ("What was signed after 5 May 2024?", (D(2024, 5, 6), None)),
        ("What was signed after 2022?", (D(2023, 1, 1), None)),
        ("How did it trade before 2024?", (None, D(2023, 12, 31))),
        ("What was said before June 2025?", (None, D(2025, 5, 31))),
        ("What was proposed until the end of 2023?", (None, D(2023, 12, 31))),
        ("What was proposed until March 2024?", (None, D(2024, 3, 31))),
        ("What changed since the start of 2025?", (D(2025, 1, 1), None)),
        # two ends
        ("What happened between March and May 2025?", (D(2025, 3, 1), D(2025, 5, 31))),
        ("What happened from 1 to 15 October 2025?", (D(2025, 10, 1), D(2025, 10, 15))),
        ("What happened between 2020 and 2022?", (D(2020, 1, 1), D(2022, 12, 31))),
        # relative to as_of: calendar periods whole, "the past N" rolling to as_of
        ("What was reported this year?", (D(2026, 1, 1), D(2026, 12, 31))),
        ("What was reported last year?", (D(2025, 1, 1), D(2025, 12, 31))),
        ("What was decided last month?", (D(2026, 11, 1), D(2026, 11, 30))),
        ("What was decided this month?", (D(2026, 12, 1), D(2026, 12, 31))),
        ("What reopened last week?", (D(2026, 11, 23), D(2026, 11, 29))),
        ("What was said this week?", (D(2026, 11, 30), D(2026, 12, 6))),
        ("What was said yesterday?", (D(2026, 12, 2), D(2026, 12, 2))),
        ("What was said today?", (D(2026, 12, 3), D(2026, 12, 3))),
        ("What happened in the past two weeks?", (D(2026, 11, 19), D(2026, 12, 3))),
        ("What happened over the past year?", (D(2025, 12, 3), D(2026, 12, 3))),
        ("What has been said since last year?", (D(2025, 1, 1), None)),
        # an event dated in a period: bounded on the event's side
        ("What was agreed before the visit in 2024?", (None, D(2024, 12, 31))),
        ("What happened after the ceasefire in June 2025?", (D(2025, 6, 1), None)),
    ],
)
def test_each_shape_of_range(question: str, expected: tuple[D | None, D | None]) -> None:
    assert _range(question) == expected


@pytest.mark.parametrize(
    "question",
    [
        "What does the 2025 agreement say about transit fees?",
        "How did Pakistan do at the 2024 Olympics?",
        "What were the results of the 2024 election?",
        "What has been rebuilt since the 2022 floods?",
        "What was in last year's budget?",
        "What is the 1979 revolution's legacy?",
        "How did COVID-19 affect remittances?",
        "What are the goals of Vision 2030?",
        "What does Resolution 2231 require?",
        "How did the 12-day war end?",
        "Which are the top 10 buyers?",
        "Which plant will produce 500 MW?",
        "How many F-16 jets are there?",
        "What did the ministry announce at 9 pm?",
        "Why did it happen at 3:30 am?",
        "Why has the dispute lasted for 30 years?",
        "What happened in 12 days of fighting?",
        'What did the report "Iran in 2024" conclude?',
        "Why may the tariffs accelerate inflation?",
        "What did Theresa May say?",
        "Who led the long march?",
        "What did the Sunday Times reveal?",
        "What happened in 2024-25?",
        "What is planned for next year?",
        "Which deals will be signed in 2030?",
        "What did Iran say about Pakistan?",
        "",
    ],
)
def test_traps_give_no_range(question: str) -> None:
    assert date_range_in(question, AS_OF) is None


def test_a_month_without_a_year_is_its_latest_occurrence_begun_by_as_of() -> None:
    assert _range("What happened in December?", D(2026, 2, 10)) == (D(2025, 12, 1), D(2025, 12, 31))
    assert _range("What happened in November?", D(2026, 11, 5)) == (D(2026, 11, 1), D(2026, 11, 30))
    assert _range("What happened in March?", D(2026, 2, 28)) == (D(2025, 3, 1), D(2025, 3, 31))
    assert _range("What changed since 1 October?", D(2026, 9, 30)) == (D(2025, 10, 1), None)


def test_this_year_is_the_whole_calendar_year_of_as_of() -> None:
    # as_of anchors a period and never truncates it (documented in the module).
    assert _range("What was reported this year?", D(2026, 12, 3)) == (D(2026, 1, 1), D(2026, 12, 31))
    assert _range("What was reported this year?", D(2024, 2, 29)) == (D(2024, 1, 1), D(2024, 12, 31))


def test_phrase_and_offsets() -> None:
    question = "What did Iran and Pakistan agree on border trade in November 2025?"
    found = date_range_in(question, AS_OF)
    assert found == DateRange(D(2025, 11, 1), D(2025, 11, 30), "in November 2025", 49, 65)
    assert question[found.start : found.end] == found.phrase
    found = date_range_in("What protests took place in the past two weeks?", AS_OF)
    assert found is not None and found.phrase == "in the past two weeks"
    found = date_range_in("What was agreed before the visit in 2024?", AS_OF)
    assert found is not None and found.phrase == "before the visit in 2024"
    found = date_range_in("What did analysts write between 2020 and 2022 about CPEC?", AS_OF)
    assert found is not None and found.phrase == "between 2020 and 2022"
    assert found.as_dict() == {
        "after": "2020-01-01",
        "before": "2022-12-31",
        "phrase": "between 2020 and 2022",
        "start": 24,
        "end": 45,
    }


def test_the_first_range_of_several_is_returned() -> None:
    assert _range("What happened in March 2024 and in May 2025?") == (D(2024, 3, 1), D(2024, 3, 31))


_DATE_WORDS = st.sampled_from(
    [
        "in", "since", "after", "before", "until", "between", "and", "from", "to", "the", "end", "of",
        "this", "last", "past", "two", "10", "week", "weeks", "month", "year", "years", "days",
        "yesterday", "today", "May", "March", "October", "1", "15", "2024", "2025", "1979", "2231",
        "-", "/", ",", "?", '"', "'s", "visit", "agreement", "Sunday", "9", "pm", "3:30",
    ]
)  # fmt: skip
_QUESTIONS = st.one_of(st.text(max_size=80), st.lists(_DATE_WORDS, max_size=12).map(" ".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(question=_QUESTIONS, as_of=st.dates(min_value=D(1950, 1, 1), max_value=D(2090, 12, 31)))
@example(question="between 15 and 1 October", as_of=AS_OF)
@example(question="from December to January 2025", as_of=AS_OF)
def test_never_raises_and_every_range_is_well_formed(question: str, as_of: datetime.date) -> None:
    found = date_range_in(question, as_of)
    if found is not None:
        assert found.after is not None or found.before is not None
        if found.after is not None and found.before is not None:
            assert found.after <= found.before
        assert found.phrase == question[found.start : found.end]
        assert found.phrase.strip() == found.phrase and found.phrase


def test_the_eval_set_loads_and_every_line_is_well_formed() -> None:
    items = load_dated_questions(DEFAULT_SET)
    assert len(items) >= 60
    assert len({item.id for item in items}) == len(items)
    splits = {split: [item for item in items if item.split == split] for split in ("dev", "heldout")}
    assert 0.3 <= len(splits["dev"]) / len(items) <= 0.5
    assert sum(item.expected is None for item in items) >= 20
    for item in items:
        assert item.question.strip() and item.kind
        assert (item.expected is None) == item.kind.startswith("trap"), item.id
        if item.expected is not None:
            after, before = item.expected
            assert after is None or after <= (before or after), item.id


def test_the_extractor_gets_the_dev_split_right() -> None:
    items = [item for item in load_dated_questions(DEFAULT_SET) if item.split == "dev"]
    result = figures("dev", run(items))
    assert result.false_filters == 0
    assert result.exact == result.questions


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"id": "a", "question": "q", "as_of": "2026-01-01", "range": None, "split": "test"}, "'split'"),
        ({"id": "a", "question": "q", "as_of": "1 May", "range": None, "split": "dev"}, "'as_of'"),
        ({"id": "a", "question": "q", "as_of": "2026-01-01", "split": "dev"}, "'range'"),
        (
            {"id": "a", "question": "q", "as_of": "2026-01-01", "range": {"after": None, "before": None}, "split": "dev"},
            "needs 'after' or 'before'",
        ),
        (
            {"id": "a", "question": "q", "as_of": "2026-01-01", "range": {"after": "2026-02-01", "before": "2026-01-01"}, "split": "dev"},
            "is after",
        ),
    ],
)  # fmt: skip
def test_a_malformed_line_is_refused_with_its_place(
    tmp_path: Path, record: dict[str, object], message: str
) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps(record) + "\n", "utf-8")
    with pytest.raises(EvalSetError, match=message):
        load_dated_questions(path)
