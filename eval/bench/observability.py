"""The `observability` phase: what metrics and request logs cost a search, on against off.

How: the corpus given (`--observability-corpus`, by default the bundled `corpus/articles`; e.g.
`../shared/seed-articles`) is built once with the real model, copied, and served by two servers
of the current code side by side: `on` with the service's defaults for metrics and request logs
(`RAG_METRICS=true RAG_REQUEST_LOG=true RAG_LOG_FORMAT=json`), `off` with
`RAG_METRICS=false RAG_REQUEST_LOG=false`. Settings this code does not have yet are ignored by the
service (its settings ignore unknown variables), so the phase runs on a branch with metrics only.
Rounds then alternate which side goes first at each concurrency: c=1 and c=32 `GET /search`
(hybrid) with the seed questions rotating, as the baseline phase does. on/off is the median of
the rounds' own ratios (p50 at c=1 and c=32, throughput at c=32); the target is p50 within 3%.
A last check scrapes `/metrics` of both: `on` must have counted the requests, `off` must be 404.

Left out: tracing (off by default; its cost depends on the exporter and the collector), request
logs' destination (the server's stderr goes to a file here), other modes and larger indexes.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from eval.bench.baseline import CORPUS, MODE, QUESTIONS
from eval.bench.build_compare import timed_build
from eval.bench.load import LoadFigures, pooled, run_load
from eval.bench.server import RunningServer, running_code

PROJECT_ROOT = Path(__file__).resolve().parents[2]
OVERHEAD_TARGET = 1.03  # on / off p50, at c=1 and at c=32
SIDES: dict[str, dict[str, str]] = {
    "on": {"RAG_METRICS": "true", "RAG_REQUEST_LOG": "true", "RAG_LOG_FORMAT": "json"},
    "off": {"RAG_METRICS": "false", "RAG_REQUEST_LOG": "false"},
}


def observability_phase(
    corpus: Path | None,
    rounds: int,
    requests: dict[int, int],
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Measure both sides; `requests`: requests per side and round at concurrency 1 and 32."""
    corpus = corpus or CORPUS
    questions = _questions()
    figures: dict[str, Any] = {
        "corpus": str(corpus),
        "mode": MODE,
        "rounds": rounds,
        "requests": {f"c{concurrency}": count for concurrency, count in requests.items()},
        "settings": SIDES,
        "target": OVERHEAD_TARGET,
    }
    with tempfile.TemporaryDirectory(prefix="bench-observability-") as scratch, ExitStack() as stack:
        say(f"  build {corpus} with the real model")
        built = timed_build(PROJECT_ROOT, corpus, Path(scratch) / "index")
        figures["index"] = {key: built[key] for key in ("documents", "chunks", "seconds")}
        servers: dict[str, RunningServer] = {}
        for side, settings in SIDES.items():
            index = Path(scratch) / side / "index"
            shutil.copytree(Path(scratch) / "index", index)
            say(f"  serve it with metrics and request logs {side}")
            servers[side] = stack.enter_context(
                running_code(
                    PROJECT_ROOT, index, questions[0], index.parent / "server.log", settings=settings
                )
            )
        runs = _rounds(servers, questions, rounds, requests, say)
        figures["scrape"] = _scraped(servers)
    figures["runs"] = {
        side: {f"c{c}": pooled(by_concurrency[c]).as_dict() for c in requests}
        for side, by_concurrency in runs.items()
    }
    figures["ratios"] = _ratios(runs, rounds)
    return figures


def _questions() -> list[str]:
    lines = QUESTIONS.read_text("utf-8").splitlines()
    return list(dict.fromkeys(json.loads(line)["question"] for line in lines if line.strip()))


def _rounds(
    servers: dict[str, RunningServer],
    questions: list[str],
    rounds: int,
    requests: dict[int, int],
    say: Callable[[str], None],
) -> dict[str, dict[int, list[LoadFigures]]]:
    runs: dict[str, dict[int, list[LoadFigures]]] = {side: {c: [] for c in requests} for side in servers}
    sides = list(servers)
    for number in range(rounds):
        say(f"  round {number + 1} of {rounds}")
        start = number * max(requests.values()) % len(questions)
        rotated = questions[start:] + questions[:start]
        for step, (concurrency, count) in enumerate(requests.items()):
            for side in sides if (number + step) % 2 == 0 else sides[::-1]:
                server = servers[side]
                run = run_load(server.url, rotated, concurrency, count, MODE, server.cpu_seconds, get=True)
                runs[side][concurrency].append(run)
    return runs


def _ratios(runs: dict[str, dict[int, list[LoadFigures]]], rounds: int) -> dict[str, Any]:
    """on / off per round and their median: p50 at each concurrency, throughput at the highest."""
    ratios: dict[str, Any] = {}
    for concurrency in runs["on"]:
        on, off = runs["on"][concurrency], runs["off"][concurrency]
        p50 = [on[n].p50_ms / off[n].p50_ms for n in range(rounds)]
        per_s = [on[n].per_s / off[n].per_s for n in range(rounds)]
        ratios[f"c{concurrency}"] = {
            "p50_by_round": [round(value, 3) for value in p50],
            "p50": round(statistics.median(p50), 3),
            "per_s_by_round": [round(value, 3) for value in per_s],
            "per_s": round(statistics.median(per_s), 3),
        }
    return ratios


def _scraped(servers: dict[str, RunningServer]) -> dict[str, Any]:
    """What `/metrics` of each side answers: the searches `on` counted, `off`'s status."""
    found: dict[str, Any] = {}
    for side, server in servers.items():
        response = httpx.get(f"{server.url}/metrics", timeout=30)
        found[side] = {"status": response.status_code, "bytes": len(response.content)}
        if response.status_code == 200:
            found[side]["searches_counted"] = sum(
                sample.value
                for family in text_string_to_metric_families(response.text)
                for sample in family.samples
                if sample.name == "rag_http_requests_total" and sample.labels.get("route") == "/search"
            )
    return found


def observability_targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) of the phase, when it ran."""
    figures = results.get("observability", {})
    lines = []
    for key, ratio in figures.get("ratios", {}).items():
        runs = figures["runs"]
        lines.append(
            (
                f"metrics + request logs on vs off, {key} p50 within {OVERHEAD_TARGET - 1:.0%}",
                f"{runs['on'][key]['p50_ms']:.2f} vs {runs['off'][key]['p50_ms']:.2f} ms; "
                f"on/off {ratio['p50']:.3f} (rounds' median)",
                "met" if ratio["p50"] <= OVERHEAD_TARGET else "NOT met",
            )
        )
    return lines


def observability_markdown(results: dict[str, Any], heading: Callable[[str, str], list[str]]) -> list[str]:
    figures = results.get("observability")
    if not figures or "runs" not in figures:
        return []
    index = figures["index"]
    out = heading("observability", "Metrics and request logs: on against off")
    out += [
        f"`{figures['corpus']}` ({index['documents']} documents, {index['chunks']} chunks), "
        f"{figures['mode']} `GET /search`, {figures['rounds']} interleaved rounds of "
        + ", ".join(f"{count} requests at {key}" for key, count in figures["requests"].items())
        + " per side; on: "
        + " ".join(f"`{name}={value}`" for name, value in figures["settings"]["on"].items())
        + "; off: "
        + " ".join(f"`{name}={value}`" for name, value in figures["settings"]["off"].items())
        + ". Ratios are on/off, the median of the rounds' own.",
        "",
        "| concurrency | on p50 ms | off p50 ms | p50 on/off | on req/s | off req/s | req/s on/off | p50 ratio by round |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, ratio in figures["ratios"].items():
        on, off = figures["runs"]["on"][key], figures["runs"]["off"][key]
        out.append(
            f"| {key} | {on['p50_ms']:.2f} | {off['p50_ms']:.2f} | {ratio['p50']:.3f} | {on['per_s']:.1f} | "
            f"{off['per_s']:.1f} | {ratio['per_s']:.3f} | {', '.join(f'{v:.3f}' for v in ratio['p50_by_round'])} |"
        )
    scrape = figures.get("scrape", {})
    if scrape:
        out += [
            "",
            f"`/metrics` afterwards: on answered {scrape['on']['status']} "
            f"({scrape['on'].get('searches_counted', 0):.0f} searches counted), off {scrape['off']['status']}.",
        ]
    return out
