"""`rag ask` with filters: `--filter` (the API's JSON) and its shortcut options answer only from
the matching documents; bad JSON, a broken filter or a bad date is a usage error (exit 2) and
nothing is searched."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from corpus import load_corpus
from service import cli as cli_module
from service.config import get_settings
from tests.conftest import BUNDLED_CORPUS
from tests.test_filters_api import DATED, QUESTION

DAWN_IDS = {document.id for document in DATED}


@pytest.fixture
def dated(runner: CliRunner) -> CliRunner:
    engine = cli_module._engine(get_settings())
    engine.sync(load_corpus([BUNDLED_CORPUS]))
    engine.upsert(DATED)
    return runner


def ask(runner: CliRunner, *options: str, question: str = QUESTION) -> dict[str, Any]:
    result = runner.invoke(cli_module.cli, ["ask", question, "-k", "10", "--json", *options])
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = json.loads(result.output)
    return body


def ids(body: dict[str, Any]) -> set[str]:
    return {item["document"]["id"] for item in body["results"]}


def test_filter_json_and_the_shortcuts(dated: CliRunner) -> None:
    dawn = {"must": [{"key": "source", "match": {"value": "Dawn"}}]}
    assert ids(ask(dated, "--filter", json.dumps(dawn))) == DAWN_IDS
    shortcuts = ask(
        dated, "--source", "Dawn", "--published-after", "2025-11-10", "--published-before", "2025-11-17"
    )
    assert ids(shortcuts) == {"dawn-10", "dawn-17"}
    assert ids(ask(dated, "--document-id", "dawn-3", "--document-id", "thepenpk-defence-pact")) == {
        "dawn-3",
        "thepenpk-defence-pact",
    }
    assert ids(ask(dated, "--author", "Ahmed Ali")) == {"thepenpk-defence-pact"}
    # --filter and the shortcuts together: both hold.
    world = {"must": [{"key": "metadata.section", "match": {"value": "world"}}]}
    both = ask(dated, "--filter", json.dumps(world), "--published-after", "2025-11-20")
    assert ids(both) == {"dawn-24"}


def test_dates_from_the_question_and_turning_them_off(dated: CliRunner) -> None:
    question = "security cooperation this month"
    within = ask(dated, "--as-of", "2025-11-20", question=question)
    assert ids(within) == DAWN_IDS
    assert within["filter_from_question"]["phrase"] == "this month"
    whole = ask(dated, "--as-of", "2025-11-20", "--no-dates-from-question", question=question)
    assert whole["filter_from_question"] is None and ids(whole) - DAWN_IDS


def test_the_human_output_says_which_filter_applied(dated: CliRunner) -> None:
    result = dated.invoke(cli_module.cli, ["ask", QUESTION, "-k", "10", "--source", "Nournews"])
    assert result.exit_code == 0, result.output
    assert 'Filter: {"must": [{"key": "source", "match": {"value": "Nournews"}}]}' in result.output
    printed = {line.split()[0] for line in result.output.splitlines() if " chars " in line}
    assert printed == {"nournews-larijani-visit"}


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--filter", "{must: []}"], "Invalid value for --filter: Invalid JSON"),
        (["--filter", '{"must": [{"key": "sorce", "match": {"value": "Dawn"}}]}'], "unknown field 'sorce'"),
        (["--filter", '{"always": []}'], "always: Extra inputs are not permitted"),
        (["--published-after", "yesterday"], "--published-after 'yesterday' is not a date"),
        (["--as-of", "next week"], "as_of 'next week' is not a date"),
    ],
)
def test_a_broken_filter_is_a_usage_error(
    dated: CliRunner, monkeypatch: pytest.MonkeyPatch, options: list[str], named: str
) -> None:
    monkeypatch.setattr(cli_module, "_engine", lambda *_: pytest.fail("searched despite the error"))
    result = dated.invoke(cli_module.cli, ["ask", QUESTION, *options])
    assert result.exit_code == 2, result.output
    assert named in result.output and "Traceback" not in result.output
