"""`published` in ISO 8601 at ingest (`corpus.dates`): the forms read, the forms refused, and every
way in (front matter, HTML metadata, JSON lines, the API, `rag build` and `rag add`). A refused
date changes nothing; a date stored before normalisation still reads back, matching no range."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from corpus import CorpusError, Document, load_corpus, parse_file_bytes
from corpus.dates import normalise_published
from corpus.errors import InvalidDateError
from service import cli as cli_module
from service.engine import Engine

ARTICLE = "Iran and Pakistan agreed on joint border patrols near Taftan, officials said."
NOVEMBER = {"must": [{"key": "published", "range": {"gte": "2025-11-01", "lte": "2025-11-30"}}]}


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("", ""),
        ("   ", ""),
        ("2025-11-03", "2025-11-03"),
        (" 2025-11-03 ", "2025-11-03"),
        ("20251103", "2025-11-03"),
        ("2025-11-03T09:00:00+03:30", "2025-11-03T09:00:00+03:30"),
        ("2025-11-03 09:00", "2025-11-03T09:00:00"),
        ("2025-11-03T06:30Z", "2025-11-03T06:30:00+00:00"),
        ("3 November 2025", "2025-11-03"),
        ("November 3, 2025", "2025-11-03"),
        ("3rd Nov 2025", "2025-11-03"),
        ("Monday, 3 November 2025", "2025-11-03"),
        ("Mon, 03 Nov 2025 09:00:00 +0000", "2025-11-03T09:00:00+00:00"),
        ("3 November 2025 09:00 IRST", "2025-11-03T09:00:00+03:30"),
        ("3 November 2025 9am EST", "2025-11-03T09:00:00-05:00"),
        ("Nov 3 2025 9:00 PM", "2025-11-03T21:00:00"),
        ("13/04/2025", "2025-04-13"),  # 13 is no month: day first, unambiguously
        ("04/13/2025", "2025-04-13"),
        ("04/04/2025", "2025-04-04"),  # either way round, the same day
        ("2025/04/03", "2025-04-03"),
    ],
)
def test_accepted_forms_become_iso_8601(text: str, iso: str) -> None:
    assert normalise_published(text) == iso


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("03/04/2025", "either way round"),
        ("3.11.2025", "either way round"),
        ("3 Nov 25", "four figures"),
        ("November 3, 25", "four figures"),
        ("yesterday", "not a day, a month and a year"),
        ("2 days ago", "not a day, a month and a year"),
        ("last Monday", "not a day, a month and a year"),
        ("November 2025", "not a day, a month and a year"),
        ("2025", "not a day, a month and a year"),
        ("1762160400", "not a day, a month and a year"),
        ("31 February 2025", "not a day, a month and a year"),
        ("Tuesday, 3 November 2025", "2025-11-03 is a Monday"),
        ("Tue 3 Nov 2025", "2025-11-03 is a Monday"),
        ("3 November 2025 09:00 XYZ", "not a day, a month and a year"),
        ("3 November 2025 09:00 Asia/Tehran", "not a day, a month and a year"),
        ("3 November 2025 09:00 IST", "names several zones"),
        ("Published 3 November 2025", "not a day, a month and a year"),
        ("soon", "not a day, a month and a year"),
    ],
)
def test_guesses_are_refused_naming_the_value_and_the_accepted_forms(text: str, reason: str) -> None:
    with pytest.raises(InvalidDateError) as refused:
        normalise_published(text)
    message = str(refused.value)
    assert f"published date {text!r} is refused: " in message and reason in message
    assert "use ISO 8601 (2025-11-03, 2025-11-03T09:00:00+03:30)" in message


def test_text_longer_than_any_date_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(
        InvalidDateError, match=r"'3 November 2025 3 November 2025 3 Novemb'\.\.\. is refused: 159 "
    ):
        normalise_published("3 November 2025 " * 10)


offsets = st.builds(
    dt.timezone,
    st.timedeltas(
        min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59)
    ),
)


@given(st.dates())
def test_any_iso_date_round_trips_unchanged(date: dt.date) -> None:
    assert normalise_published(date.isoformat()) == date.isoformat()


@given(st.datetimes(timezones=st.none() | offsets))
def test_any_iso_date_time_round_trips_unchanged(moment: dt.datetime) -> None:
    assert normalise_published(moment.isoformat()) == moment.isoformat()


@pytest.mark.parametrize(
    ("front_matter", "iso"),
    [
        ("published: 3 November 2025", "2025-11-03"),
        ("published: 2025-11-03", "2025-11-03"),  # YAML reads it as a date
        ("published: 2025-11-03 09:00:00+03:30", "2025-11-03T09:00:00+03:30"),  # YAML's timestamp
        ("published: 'November 3, 2025 09:00 UTC'", "2025-11-03T09:00:00+00:00"),
    ],
)
def test_front_matter_dates_are_normalised(tmp_path: Path, front_matter: str, iso: str) -> None:
    path = tmp_path / "dated.md"
    path.write_text(f"---\ntitle: Patrols\n{front_matter}\n---\n{ARTICLE}\n", "utf-8")
    [document] = load_corpus([path])
    assert document.published == iso


def test_html_metadata_dates_are_normalised() -> None:
    page = f"""<html><head><title>Patrols | Border News</title>
<meta property="article:published_time" content="2025-11-03T09:00:00+03:30"></head>
<body><article><h1>Patrols</h1><p>{ARTICLE}</p>
<p>The patrols begin next month and will cover the whole length of the frontier.</p></article></body></html>"""
    document = parse_file_bytes("patrols.html", page.encode())
    assert document.published == "2025-11-03"  # trafilatura gives the day the page states


def test_json_lines_dates_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    records = [
        {"_id": "a", "text": ARTICLE, "published": "November 3, 2025"},
        {"_id": "b", "text": ARTICLE, "published": "2025-11-04T10:00:00+05:00"},
        {"_id": "c", "text": ARTICLE},
    ]
    path.write_text("\n".join(json.dumps(record) for record in records), "utf-8")
    assert [d.published for d in load_corpus([path])] == ["2025-11-03", "2025-11-04T10:00:00+05:00", ""]


def test_a_refused_date_in_a_file_names_the_file_and_the_value(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text(json.dumps({"_id": "a", "text": ARTICLE, "published": "03/04/2025"}), "utf-8")
    with pytest.raises(CorpusError, match=r"news\.jsonl:1: published date '03/04/2025' is refused"):
        load_corpus([path])
    with pytest.raises(CorpusError, match=r"^upload\.md: published date 'yesterday' is refused"):
        parse_file_bytes("upload.md", f"---\npublished: yesterday\n---\n{ARTICLE}".encode())


def documents_held(client: TestClient) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = client.get("/documents").json()["documents"]
    return listed


def test_the_api_stores_iso_and_a_date_range_finds_it(client: TestClient) -> None:
    added = client.post(
        "/documents",
        json={"id": "patrols", "title": "Patrols", "text": ARTICLE, "published": "3 November 2025"},
    )
    assert added.status_code == 200, added.text
    assert client.get("/documents/patrols").json()["published"] == "2025-11-03"
    found = client.post("/search", json={"query": "border patrols near Taftan", "k": 5, "filter": NOVEMBER})
    assert found.status_code == 200, found.text
    assert [item["document"]["id"] for item in found.json()["results"]] == ["patrols"]


@pytest.mark.parametrize("published", ["03/04/2025", "yesterday", "Tuesday, 3 November 2025", "3 Nov 25"])
def test_the_api_refuses_a_guessed_date_with_a_422_and_changes_nothing(
    client: TestClient, published: str
) -> None:
    before = client.get("/healthz").json()["index_version"]
    response = client.post("/documents", json={"id": "patrols", "text": ARTICLE, "published": published})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("published: ") and repr(published) in error["message"]
    assert [detail["field"] for detail in error["details"]] == ["published"]
    upload = client.post(
        "/documents",
        files={"file": ("patrols.txt", ARTICLE.encode(), "text/plain")},
        data={"published": published},
    )
    assert upload.status_code == 422
    assert upload.json()["error"]["code"] == "invalid_document"
    assert f"patrols.txt: published date {published!r} is refused" in upload.json()["error"]["message"]
    assert client.get("/healthz").json()["index_version"] == before
    assert "patrols" not in {document["id"] for document in documents_held(client)}


def test_a_date_stored_before_normalisation_reads_back_and_matches_no_range(
    fake_engine: Engine, client: TestClient
) -> None:
    # What an index written before dates were normalised may hold: the engine stores as given.
    fake_engine.upsert([Document(id="old-patrols", text=ARTICLE, published="3 Nov 2025")])
    assert client.get("/documents/old-patrols").json()["published"] == "3 Nov 2025"
    found = client.post("/search", json={"query": "border patrols near Taftan", "k": 5, "filter": NOVEMBER})
    assert found.status_code == 200 and found.json()["results"] == []


def test_rag_build_and_add_name_the_file_and_the_value_and_build_writes_nothing(
    runner: CliRunner, tmp_path: Path
) -> None:
    assert runner.invoke(cli_module.cli, ["build"]).exit_code == 0
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "a-good.md").write_text(f"---\npublished: 3 November 2025\n---\n{ARTICLE}", "utf-8")
    (folder / "b-bad.md").write_text(f"---\npublished: 03/04/2025\n---\n{ARTICLE}", "utf-8")
    refused = runner.invoke(cli_module.cli, ["build", str(folder)])
    assert refused.exit_code == 1, refused.output
    assert "Error: b-bad.md: published date '03/04/2025' is refused" in refused.output
    assert "Traceback" not in refused.output
    unchanged = runner.invoke(cli_module.cli, ["build"])
    assert unchanged.exit_code == 0 and "nothing to do" in unchanged.output
    assert "3 documents in all" in unchanged.output  # a build is all or nothing: a-good.md was not written
    # `rag add` refuses the bad file with its reason and adds the others (service/bulk_add.py).
    added = runner.invoke(cli_module.cli, ["add", str(folder)])
    assert added.exit_code == 1, added.output
    assert "  b-bad.md: published date '03/04/2025' is refused" in added.output
    assert "added 1" in added.output and "Traceback" not in added.output
