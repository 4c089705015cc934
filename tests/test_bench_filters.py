"""The filters benchmark phase (eval/bench/filtering.py, filtering_report.py): the documents' sources
and dates, the variants' filters, the summaries, the targets and the report section, on hand-made
data (nothing here is timed or needs SciFact)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from eval.bench.filtering import (
    DATE_SHARE,
    FIRST_USE,
    OTHER_SOURCE,
    SOURCE_SHARES,
    UNFILTERED,
    YEAR,
    YEAR_START,
    date_filter,
    date_window,
    publication_instants,
    rotated,
    source_filter,
    source_plan,
    summary,
    variant_filters,
)
from eval.bench.filtering_report import filters_markdown, filters_targets
from eval.bench.report import render_markdown
from index.storage.fields import DocumentFields


def test_source_plan_gives_each_source_its_share_in_a_shuffled_order() -> None:
    plan = source_plan(1000, SOURCE_SHARES, np.random.default_rng(0))
    assert len(plan) == 1000
    assert plan.count("share-1pct") == 10
    assert plan.count("share-10pct") == 100
    assert plan.count("share-50pct") == 500
    assert plan.count(OTHER_SOURCE) == 390
    rows = [row for row, source in enumerate(plan) if source == "share-10pct"]
    assert rows[0] < 300 and rows[-1] > 700  # spread over the rows, not one block


def test_source_plan_refuses_shares_above_the_whole() -> None:
    with pytest.raises(ValueError, match="more than every document"):
        source_plan(10, {"a": 0.6, "b": 0.5}, np.random.default_rng(0))


def test_publication_instants_put_a_window_s_share_of_documents_in_it() -> None:
    instants = publication_instants(10_000, np.random.default_rng(1))
    assert min(instants) >= YEAR_START and max(instants) < YEAR_START + YEAR
    begin, end = date_window()
    inside = sum(begin <= instant < end for instant in instants)
    assert abs(inside - DATE_SHARE * 10_000) <= 1
    assert instants != sorted(instants)  # not in row order


def test_date_window_covers_its_share_of_the_year_from_its_start() -> None:
    begin, end = date_window(0.01, 0.5)
    assert begin == YEAR_START + YEAR / 2
    assert end - begin == YEAR / 100


def _fields(sources: list[str], published: list[str]) -> DocumentFields:
    columns = {"source": sources, "published": published}
    return DocumentFields(len(sources), lambda key: columns[key])


def test_an_unseen_filter_is_new_to_a_cache_and_matches_the_same_documents() -> None:
    begin, _ = date_window()
    fields = _fields(
        ["share-1pct", "rest", "share-1pct"],
        [
            begin.isoformat(),
            (begin - dt.timedelta(days=1)).isoformat(),
            (begin + dt.timedelta(hours=1)).isoformat(),
        ],
    )
    assert source_filter("share-1pct", 3) != source_filter("share-1pct")
    assert source_filter("share-1pct", 3).documents(fields).tolist() == [True, False, True]
    assert source_filter("share-1pct").documents(fields).tolist() == [True, False, True]
    assert date_filter(5) != date_filter()
    assert date_filter().documents(fields).tolist() == [True, False, True]
    # The shifted bound leaves out only what was published in its first microseconds.
    assert date_filter(5).documents(fields).tolist() == [False, False, True]


def test_variant_filters_name_unfiltered_seen_and_first_use_variants() -> None:
    first, second = variant_filters(1), variant_filters(2)
    assert first[UNFILTERED] is None
    assert list(first) == list(second)
    names = [name for name in first if name != UNFILTERED]
    assert len(names) == 2 * (len(SOURCE_SHARES) + 1)
    for name in names:
        if name.endswith(FIRST_USE):
            assert first[name] != second[name]  # a new filter each time
        else:
            assert first[name] == second[name]  # the same one: its mask is cached


def test_rotated_starts_at_the_turn_and_wraps() -> None:
    assert rotated(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert rotated(["a", "b", "c"], 4) == ["b", "c", "a"]
    assert rotated([], 3) == []


def test_summary_gives_ratios_to_the_unfiltered_p50_and_paired_medians() -> None:
    rows = summary({UNFILTERED: [10.0, 20.0, 30.0], "source 1%": [5.0, 10.0, 60.0]})
    assert rows[UNFILTERED]["p50_ratio"] == 1.0
    assert rows["source 1%"]["p50_ms"] == 10.0
    assert rows["source 1%"]["p50_ratio"] == 0.5
    assert rows["source 1%"]["paired_ratio_median"] == 0.5  # of 0.5, 0.5, 2.0
    assert rows["source 1%"]["p95_ms"] == pytest.approx(55.0)


def _search(p50: float, ratio: float) -> dict[str, Any]:
    return {
        "n": 100,
        "p50_ms": p50,
        "p90_ms": p50,
        "p95_ms": p50 * 1.2,
        "p99_ms": p50 * 1.5,
        "max_ms": p50 * 2,
        "mean_ms": p50,
        "p50_ratio": ratio,
        "paired_ratio_median": ratio,
    }


def _results(first_use_ratio: float = 1.2, block_ratio: float = 1.01) -> dict[str, Any]:
    layout = {
        "vector_index": ["FlatVectors"],
        "masks": {"source, first filter on the field (column built)": 80.0},
        "allowed_share": {"source 1%": 0.01, "published 1%": 0.0099},
        "searches": {
            UNFILTERED: _search(10.0, 1.0),
            "source 1%": _search(4.0, 0.4),
            "published 1%": _search(5.0, 0.5),
            "source 1%, first use": _search(12.0, first_use_ratio),
        },
    }
    runs = {"current": {"p50_ms": 10.1, "p95_ms": 12.0}, "reference": {"p50_ms": 10.0, "p95_ms": 12.5}}
    return {
        "started": "2026-12-06 18:00:00 UTC",
        "cpus": 2,
        "filters": {
            "chunks": 100_000,
            "queries": 100,
            "rounds": 2,
            "k": 5,
            "source_shares": SOURCE_SHARES,
            "date_window": ["2025-07-02T12:00:00+00:00", "2025-07-06T03:36:00+00:00"],
            "layouts": {"flat": layout},
            "reference": {
                "ref": "a1d323c",
                "commit": "a1d323c",
                "block": 20,
                "layouts": {"flat": {"runs": runs, "p50_ratio": 1.01, "block_ratio_median": block_ratio}},
            },
        },
    }


def test_targets_take_the_worse_of_cached_and_first_use() -> None:
    met = filters_targets(_results(first_use_ratio=1.2))
    assert [verdict for _, _, verdict in met] == ["met", "met", "met"]
    assert "first use 1.20x" in met[0][1]
    missed = filters_targets(_results(first_use_ratio=1.6, block_ratio=1.2))
    assert missed[0][2] == "NOT met"
    assert missed[1][2] == "met"  # the published filter has no first-use row here
    assert missed[2][2] == "NOT met" and "1.20x" in missed[2][1]


def test_the_section_lists_every_variant_the_masks_and_the_reference() -> None:
    lines = filters_markdown(_results(), lambda key, title: ["", f"## {title}", ""])
    text = "\n".join(lines)
    assert "## Filters: hybrid search over 100,000 chunks with and without a filter" in text
    assert "| source 1% | 1.00% | 4.00 |" in text
    assert "| source 1%, first use | 1.00% | 12.00 |" in text  # the share of the filter it repeats
    assert "| unfiltered | 100% |" in text
    assert "column built) 80.00 ms" in text
    assert "| flat | 10.10 | 10.00 |" in text


def test_a_skipped_phase_says_why_and_a_report_without_it_has_no_section() -> None:
    skipped = filters_markdown({"filters": {"skipped": "no SciFact"}}, lambda key, title: [f"## {title}"])
    assert skipped[-1] == "Not measured: no SciFact"
    assert filters_markdown({}, lambda key, title: [f"## {title}"]) == []
    assert "## Filters" in render_markdown(_results())
    assert "## Filters" not in render_markdown({"started": "x", "cpus": 2})
