"""The time-range eval: how well `index.text.dates.date_range_in` reads the range a question states.

The set (`eval/sets/dated_questions.jsonl`) is JSON Lines, one question a line:
``{"id", "question", "as_of", "range": {"after", "before"} | null, "kind", "split"}``. `range` is
the expected `published` filter, both ends inclusive ISO dates or null (open on that side);
``"range": null`` marks a trap, a question that must get no filter. `split` is `dev` (looked at
while building the extractor) or `heldout` (not tuned on).

Figures per split: exact-match accuracy over all questions (a trap is right when it gets no
filter), recall of the real ranges (exactly right, and found at all), false filters on traps, and
the time per question. Run: ``python -m eval.dated_questions [--split dev|heldout] [--verbose]``.
"""

from __future__ import annotations

import datetime
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import click

from eval.sets import EvalSetError, _json_lines
from index.text.dates import DateRange, date_range_in

DEFAULT_SET = Path(__file__).parent / "sets" / "dated_questions.jsonl"
SPLITS = ("dev", "heldout")

Range = tuple[datetime.date | None, datetime.date | None]


@dataclass(frozen=True)
class DatedQuestion:
    id: str
    question: str
    as_of: datetime.date
    expected: Range | None  # None: a trap, no filter expected
    kind: str
    split: str


@dataclass(frozen=True)
class Outcome:
    item: DatedQuestion
    got: DateRange | None
    seconds: float

    @property
    def got_range(self) -> Range | None:
        return None if self.got is None else (self.got.after, self.got.before)

    @property
    def correct(self) -> bool:
        return self.got_range == self.item.expected


@dataclass(frozen=True)
class Figures:
    split: str
    questions: int
    exact: int
    ranges: int
    ranges_exact: int
    ranges_found: int
    traps: int
    false_filters: int
    median_ms: float
    p95_ms: float

    def lines(self) -> list[str]:
        return [
            f"[{self.split}] {self.questions} questions ({self.ranges} ranges, {self.traps} traps)",
            f"  exact-match accuracy      {self.exact}/{self.questions} = {_share(self.exact, self.questions)}",
            f"  range recall (exact)      {self.ranges_exact}/{self.ranges} = {_share(self.ranges_exact, self.ranges)}",
            f"  range recall (any filter) {self.ranges_found}/{self.ranges} = {_share(self.ranges_found, self.ranges)}",
            f"  false filters on traps    {self.false_filters}/{self.traps} = {_share(self.false_filters, self.traps)}",
            f"  time per question         median {self.median_ms:.2f} ms, p95 {self.p95_ms:.2f} ms",
        ]


def load_dated_questions(path: Path = DEFAULT_SET) -> list[DatedQuestion]:
    """The questions of a dated-question set, in file order; ids must be unique."""
    items: list[DatedQuestion] = []
    seen: set[str] = set()
    for line_number, record in _json_lines(path):
        where = f"{path}:{line_number}"
        question_id, text, split = record.get("id"), record.get("question"), record.get("split")
        if not isinstance(question_id, str) or not question_id or question_id in seen:
            raise EvalSetError(f"{where}: 'id' must be a new non-empty string")
        if not isinstance(text, str) or not text.strip():
            raise EvalSetError(f"{where}: 'question' must be a non-empty string")
        if split not in SPLITS:
            raise EvalSetError(f"{where}: 'split' must be one of {', '.join(SPLITS)}")
        as_of = _date(record.get("as_of"), f"{where}: 'as_of'")
        if as_of is None:
            raise EvalSetError(f"{where}: 'as_of' is required")
        expected = _expected(record.get("range", "missing"), where)
        seen.add(question_id)
        items.append(DatedQuestion(question_id, text, as_of, expected, str(record.get("kind", "")), split))
    if not items:
        raise EvalSetError(f"{path}: no questions")
    return items


def _expected(value: object, where: str) -> Range | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"after", "before"}:
        raise EvalSetError(f"{where}: 'range' must be null or {{'after', 'before'}}")
    after = _date(value["after"], f"{where}: 'range.after'")
    before = _date(value["before"], f"{where}: 'range.before'")
    if after is None and before is None:
        raise EvalSetError(f"{where}: a range needs 'after' or 'before' (null is written as 'range': null)")
    if after and before and after > before:
        raise EvalSetError(f"{where}: 'range.after' is after 'range.before'")
    return after, before


def _date(value: object, what: str) -> datetime.date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise EvalSetError(f"{what} must be an ISO date or null")
    try:
        return datetime.date.fromisoformat(value)
    except ValueError as error:
        raise EvalSetError(f"{what}: {error}") from error


def run(items: list[DatedQuestion]) -> list[Outcome]:
    """Each question's range, timed. The parser is warmed first: its first call loads language
    data once per process (reported apart by the CLI), which is not a per-question cost."""
    date_range_in("in May 2020", datetime.date(2020, 6, 1))
    outcomes = []
    for item in items:
        started = time.perf_counter()
        got = date_range_in(item.question, item.as_of)
        outcomes.append(Outcome(item, got, time.perf_counter() - started))
    return outcomes


def figures(split: str, outcomes: list[Outcome]) -> Figures:
    ranges = [outcome for outcome in outcomes if outcome.item.expected is not None]
    traps = [outcome for outcome in outcomes if outcome.item.expected is None]
    times = sorted(outcome.seconds * 1000 for outcome in outcomes)
    return Figures(
        split=split,
        questions=len(outcomes),
        exact=sum(outcome.correct for outcome in outcomes),
        ranges=len(ranges),
        ranges_exact=sum(outcome.correct for outcome in ranges),
        ranges_found=sum(outcome.got is not None for outcome in ranges),
        traps=len(traps),
        false_filters=sum(outcome.got is not None for outcome in traps),
        median_ms=statistics.median(times) if times else 0.0,
        p95_ms=times[min(len(times) - 1, round(0.95 * (len(times) - 1)))] if times else 0.0,
    )


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _show(range_: Range | None) -> str:
    if range_ is None:
        return "no filter"
    after, before = range_
    return f"{after or '…'}..{before or '…'}"


@click.command()
@click.option(
    "--set", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=DEFAULT_SET
)
@click.option("--split", type=click.Choice([*SPLITS, "all"]), default="all", show_default=True)
@click.option("--verbose", is_flag=True, help="Print every question that is wrong.")
def main(path: Path, split: str, verbose: bool) -> None:
    """Exact-match accuracy, range recall and false filters of the time ranges read from questions."""
    items = load_dated_questions(path)
    started = time.perf_counter()
    date_range_in("since March 2021", datetime.date(2021, 6, 1))  # cold: import and first parse
    click.echo(f"first call (dateparser import and warm-up): {(time.perf_counter() - started) * 1000:.0f} ms")
    for name in SPLITS if split == "all" else (split,):
        outcomes = run([item for item in items if item.split == name])
        for line in figures(name, outcomes).lines():
            click.echo(line)
        if verbose:
            for outcome in outcomes:
                if not outcome.correct:
                    phrase = f" from {outcome.got.phrase!r}" if outcome.got else ""
                    click.echo(
                        f"    WRONG {outcome.item.id} {outcome.item.question!r} (as of {outcome.item.as_of}): "
                        f"expected {_show(outcome.item.expected)}, got {_show(outcome.got_range)}{phrase}"
                    )


if __name__ == "__main__":
    main()
