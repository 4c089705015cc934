// The page: ask GET /search and show the passages; ?doc=ID&start=S&end=E shows one article with
// text[S:E] highlighted. The page's own query string is GET /search's (q, source, published_after,
// published_before), so a link keeps the question and its filters. All text goes into the DOM as
// text nodes (never as HTML).
"use strict";

const $ = (id) => document.getElementById(id);
const DATE_PARAMS = ["published_after", "published_before"];
const ARTICLE_PARAMS = ["doc", "start", "end", "astart", "aend"];

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

function sourceBoxes() {
  return [...document.querySelectorAll("#sources input")];
}

function addSource(source) {
  if (sourceBoxes().some((box) => box.value === source)) return;
  $("sources").append(el("label", {}, el("input", { type: "checkbox", name: "source", value: source }), ` ${source}`));
}

// The publications to choose from: those of the corpus's documents.
async function loadSources() {
  try {
    const body = await getJSON("/documents");
    [...new Set(body.documents.map((doc) => doc.source).filter(Boolean))].sort().forEach(addSource);
  } catch (error) {
    $("sources").append(el("p", { class: "hint" }, `Publications could not be listed: ${error.message}`));
  }
}

// The question and its filters from the form, as GET /search's parameters.
function formParams() {
  const params = new URLSearchParams({ q: $("q").value.trim() });
  for (const box of sourceBoxes()) if (box.checked) params.append("source", box.value);
  for (const name of DATE_PARAMS) if ($(name).value) params.set(name, $(name).value);
  return params;
}

// A link's question and filters back into the form.
function restoreForm(params) {
  $("q").value = (params.get("q") || "").trim();
  const sources = params.getAll("source");
  sources.forEach(addSource); // a publication the corpus no longer has stays visible, checked
  for (const box of sourceBoxes()) box.checked = sources.includes(box.value);
  for (const name of DATE_PARAMS) $(name).value = params.get(name) || "";
  if (sources.length || DATE_PARAMS.some((name) => params.get(name))) $("filters").open = true;
}

function withoutArticle(params) {
  const search = new URLSearchParams(params);
  ARTICLE_PARAMS.forEach((name) => search.delete(name));
  return search;
}

function showStatus(text, kind = "") {
  const status = $("status");
  status.className = kind;
  status.textContent = text;
}

function renderResult(result, search) {
  const doc = result.document;
  const articleUrl = `/?doc=${encodeURIComponent(doc.id)}&start=${result.start}&end=${result.end}` +
    `&astart=${result.answer.start}&aend=${result.answer.end}&${search}`;
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

async function ask(search) {
  $("article").hidden = true;
  $("ask").hidden = false;
  const results = $("results");
  results.hidden = false;
  results.replaceChildren();
  showStatus("Searching…", "busy");
  try {
    const body = await getJSON(`/search?${search}&k=5`);
    const list = el("ol", { class: "results" }, ...body.results.map((result) => renderResult(result, search)));
    const within = body.filter_from_question
      ? ` Searched within “${body.filter_from_question.phrase}”, the time the question states.` : "";
    if (body.results.length === 0 && (body.filter || within)) {
      showStatus(`No article matches the filters.${within}`, "no-answer");
    } else if (!body.answerable) {
      showStatus("No confident answer: the corpus most likely does not answer this question. " +
        "The closest passages are listed below, but treat them with care.", "no-answer");
      list.classList.add("weak");
    } else {
      showStatus(`${body.results.length} passages, best first. The answer sentence is highlighted.${within}`, "ok");
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
  const search = withoutArticle(params);
  $("back").href = search.get("q") ? `/?${search}` : "/";
  $("back").textContent = search.get("q") ? "← Back to the passages" : "← Ask a question";
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
  restoreForm(params);
  if ($("q").value) return ask(formParams());
  $("results").replaceChildren();
  showStatus("");
}

$("ask").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!$("q").value.trim()) return;
  const search = formParams();
  history.pushState(null, "", `/?${search}`);
  ask(search);
});

document.addEventListener("keydown", (event) => {
  const typing = ["INPUT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (event.key === "/" && !typing && !$("ask").hidden) {
    event.preventDefault();
    $("q").focus();
  }
});

window.addEventListener("popstate", route);
loadSources().then(route); // a link's sources are checked once the choices exist
