// The page: ask GET /search and show the passages; ?doc=ID&start=S&end=E shows one article with
// text[S:E] highlighted. All text goes into the DOM as text nodes (never as HTML).
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function byline(doc) {
  return [doc.source, doc.author, doc.published].filter(Boolean).join(" · ");
}

// text[start:end] of a string whose offsets are relative to `base`, with [hiStart, hiEnd) marked.
function marked(text, base, hiStart, hiEnd, markAttrs = {}) {
  const from = Math.max(0, hiStart - base);
  const to = Math.min(text.length, hiEnd - base);
  if (to <= from) return [text];
  return [text.slice(0, from), el("mark", markAttrs, text.slice(from, to)), text.slice(to)];
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return body;
}

function showStatus(text, kind = "") {
  const status = $("status");
  status.className = kind;
  status.textContent = text;
}

function renderResult(result, question) {
  const doc = result.document;
  const articleUrl = `/?doc=${encodeURIComponent(doc.id)}&start=${result.start}&end=${result.end}` +
    `&astart=${result.answer.start}&aend=${result.answer.end}&q=${encodeURIComponent(question)}`;
  const title = el("h2", {}, doc.title || doc.id);
  const meta = el("p", { class: "meta" }, byline(doc) || doc.id);
  const score = el("span", { class: "score", title: "Ranking score (higher is better)" },
    `score ${result.score.toFixed(4)}`);
  const passage = el("p", { class: "passage" },
    ...marked(result.text, result.start, result.answer.start, result.answer.end, { class: "answer" }));
  const link = el("a", { class: "open", href: articleUrl },
    "Open the article at this passage");
  const cite = el("p", { class: "cite" },
    `${doc.id}, characters ${result.start}–${result.end}`);
  return el("li", { class: "result" },
    el("div", { class: "result-head" }, el("span", { class: "rank" }, `${result.rank}`), title, score),
    meta, passage, el("div", { class: "result-foot" }, link, cite));
}

async function ask(question) {
  $("article").hidden = true;
  $("ask").hidden = false;
  const results = $("results");
  results.hidden = false;
  results.replaceChildren();
  showStatus("Searching…", "busy");
  try {
    const body = await getJSON(`/search?q=${encodeURIComponent(question)}&k=5`);
    const list = el("ol", { class: "results" }, ...body.results.map((result) => renderResult(result, question)));
    if (!body.answerable) {
      showStatus("No confident answer: the corpus most likely does not answer this question. " +
        "The closest passages are listed below, but treat them with care.", "no-answer");
      list.classList.add("weak");
    } else {
      showStatus(`${body.results.length} passages, best first. The answer sentence is highlighted.`, "ok");
    }
    results.append(list);
  } catch (error) {
    showStatus(`Could not search: ${error.message}`, "error");
  }
}

async function showArticle(params) {
  $("results").hidden = true;
  $("article").hidden = false;
  const start = Number(params.get("start"));
  const end = Number(params.get("end"));
  const question = params.get("q") || "";
  $("back").href = question ? `/?q=${encodeURIComponent(question)}` : "/";
  $("back").textContent = question ? "← Back to the passages" : "← Ask a question";
  showStatus("Loading the article…", "busy");
  try {
    const doc = await getJSON(`/documents/${encodeURIComponent(params.get("doc"))}`);
    $("article-title").textContent = doc.title || doc.id;
    const meta = $("article-meta");
    meta.replaceChildren(byline(doc));
    if (doc.url) meta.append(" · ", el("a", { href: doc.url, rel: "noopener" }, "original"));
    const text = $("article-text");
    if (Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= doc.text.length) {
      const passage = el("mark", { id: "passage", class: "passage-mark", tabindex: "-1" },
        ...marked(doc.text.slice(start, end), start,
          Number(params.get("astart")), Number(params.get("aend")), { class: "answer" }));
      text.replaceChildren(doc.text.slice(0, start), passage, doc.text.slice(end));
      showStatus(`Highlighted: characters ${start}–${end} of ${doc.id}.`, "ok");
      passage.scrollIntoView({ block: "center" });
      passage.focus({ preventScroll: true });
    } else {
      text.replaceChildren(doc.text);
      showStatus("", "");
    }
  } catch (error) {
    showStatus(`Could not load the article: ${error.message}`, "error");
  }
}

function route() {
  const params = new URLSearchParams(location.search);
  if (params.get("doc")) return showArticle(params);
  const question = (params.get("q") || "").trim();
  $("q").value = question;
  if (question) return ask(question);
  $("results").replaceChildren();
  showStatus("");
}

$("ask").addEventListener("submit", (event) => {
  event.preventDefault();
  const question = $("q").value.trim();
  if (!question) return;
  history.pushState(null, "", `/?q=${encodeURIComponent(question)}`);
  ask(question);
});

document.addEventListener("keydown", (event) => {
  const typing = ["INPUT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (event.key === "/" && !typing && !$("ask").hidden) {
    event.preventDefault();
    $("q").focus();
  }
});

window.addEventListener("popstate", route);
route();
