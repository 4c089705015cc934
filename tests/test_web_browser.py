"""The web page in a real browser: Debian's headless Chromium driven by Playwright against a
running server (real model, real corpus). Screenshots go to test-artifacts/ for a person to look at.

Chromium comes from `make system-packages` (apt), which `make test` runs first."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from corpus import Document
from index.embedding import HashingEmbedder
from service.app import create_app
from service.engine import Engine
from tests.conftest import EXAMPLE_QUESTION, PROJECT_ROOT, make_settings
from tests.live_server import live_server
from tests.test_filters_api import DATED, QUESTION

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def base_url(real_engine: Engine) -> Iterator[str]:
    with live_server(create_app(real_engine.settings, engine=real_engine)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: run `make system-packages` (make test does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def new_page(browser: Browser, width: int, height: int) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    external: list[str] = []
    page.on("request", lambda r: external.append(r.url) if not r.url.startswith("http://127.0.0.1") else None)
    page.external_requests = external  # type: ignore[attr-defined]
    return page


def test_ask_on_the_page_and_open_the_article(browser: Browser, base_url: str, real_engine: Engine) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = new_page(browser, 1280, 900)
    page.goto(f"{base_url}/")
    page.keyboard.press("/")  # the keyboard shortcut focuses the question
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type(EXAMPLE_QUESTION)
    page.keyboard.press("Enter")

    first = page.locator("li.result").first
    expect(first.locator("mark.answer")).to_contain_text("Peace Pipeline")
    expect(page.locator("#status")).to_have_class("ok")
    expect(first.locator("h2")).to_have_text("Larijani's visit to Pakistan (Nournews commentary)")
    expect(first.locator(".meta")).to_contain_text("Nournews")
    expect(first.locator(".score")).to_have_text(re.compile(r"score \d\.\d{4}"))
    assert parse_qs(urlparse(page.url).query) == {"q": [EXAMPLE_QUESTION]}  # shareable link
    page.screenshot(path=str(ARTIFACTS / "web-desktop-results.png"), full_page=True)

    first.locator("a.open").click()
    passage = page.locator("#passage")
    expect(passage).to_be_visible()
    expect(passage).to_be_in_viewport()  # scrolled to the passage
    expect(passage.locator("mark.answer")).to_contain_text("Peace Pipeline")
    document = real_engine.document("nournews-larijani-visit")
    assert passage.text_content() in document.text
    assert page.locator("#article-text").text_content() == document.text
    expect(page.locator("#article-title")).to_have_text(document.title)
    page.screenshot(path=str(ARTIFACTS / "web-desktop-article.png"))

    page.locator("#back").click()  # back to the same question's passages
    expect(page.locator("li.result").first.locator("mark.answer")).to_contain_text("Peace Pipeline")
    assert page.external_requests == []  # type: ignore[attr-defined]


def test_shared_link_on_a_phone_and_no_confident_answer(browser: Browser, base_url: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = new_page(browser, 390, 844)
    page.goto(f"{base_url}/?q={quote(EXAMPLE_QUESTION)}")
    expect(page.locator("#q")).to_have_value(EXAMPLE_QUESTION)
    expect(page.locator("li.result").first.locator("mark.answer")).to_contain_text("Peace Pipeline")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
    page.screenshot(path=str(ARTIFACTS / "web-phone-results.png"))

    page.goto(f"{base_url}/?q={quote('what is the population of Tokyo?')}")
    status = page.locator("#status")
    expect(status).to_have_class("no-answer")
    expect(status).to_contain_text("No confident answer")
    page.screenshot(path=str(ARTIFACTS / "web-phone-no-answer.png"))
    assert page.external_requests == []  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def dated_url(tmp_path_factory: pytest.TempPathFactory, bundled_documents: list[Document]) -> Iterator[str]:
    """A server over the bundled corpus and the dated Dawn reports (fake embedder: the test is
    about which documents come back, not their order)."""
    settings = make_settings(tmp_path_factory.mktemp("dated") / "index")
    engine = Engine.from_settings(settings, embedder=HashingEmbedder())
    engine.sync([*bundled_documents, *DATED])
    with live_server(create_app(settings, engine=engine)) as url:
        yield url


def shown_documents(page: Page) -> set[str]:
    return {cite.split(",")[0] for cite in page.locator("li.result .cite").all_text_contents()}


def test_pick_a_source_and_dates_and_share_the_link(browser: Browser, dated_url: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = new_page(browser, 1280, 900)
    page.goto(f"{dated_url}/")
    page.locator("#filters summary").click()
    sources = page.locator("#sources input")
    expect(sources).to_have_count(4)  # the corpus's publications, sorted
    assert [sources.nth(i).get_attribute("value") for i in range(4)] == [
        "Dawn",
        "Iran Daily",
        "Nournews",
        "The Pen PK",
    ]
    page.get_by_label("Dawn").check()
    page.locator("#published_after").fill("2025-11-10")
    page.locator("#published_before").fill("2025-11-17")
    page.locator("#q").fill(QUESTION)
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_class("ok")
    assert shown_documents(page) == {"dawn-10", "dawn-17"}
    expect(page.locator("li.result .meta").first).to_contain_text("Dawn")
    assert parse_qs(urlparse(page.url).query) == {
        "q": [QUESTION],
        "source": ["Dawn"],
        "published_after": ["2025-11-10"],
        "published_before": ["2025-11-17"],
    }
    page.screenshot(path=str(ARTIFACTS / "web-filtered-results.png"), full_page=True)

    page.reload()  # the shared link: question and filters restored, the same documents
    expect(page.get_by_label("Dawn")).to_be_checked()
    expect(page.get_by_label("Nournews")).not_to_be_checked()
    expect(page.locator("#published_after")).to_have_value("2025-11-10")
    expect(page.locator("#status")).to_have_class("ok")
    assert shown_documents(page) == {"dawn-10", "dawn-17"}

    page.locator("li.result a.open").first.click()  # the article, then back to the same filters
    expect(page.locator("#passage")).to_be_visible()
    page.locator("#back").click()
    expect(page.locator("#status")).to_have_class("ok")
    assert shown_documents(page) == {"dawn-10", "dawn-17"}
    expect(page.get_by_label("Dawn")).to_be_checked()

    page.goto(f"{dated_url}/?q={quote(QUESTION)}&source=Nournews")  # another publication
    expect(page.locator("#status")).to_have_class("ok")
    assert shown_documents(page) == {"nournews-larijani-visit"}
    expect(page.get_by_label("Dawn")).not_to_be_checked()
    assert page.external_requests == []  # type: ignore[attr-defined]
