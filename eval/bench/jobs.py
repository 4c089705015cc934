"""Bulk ingest jobs against single POSTs: `python -m eval.bench --phase jobs`.

One run sends N ~3 KB articles (`eval.bench.synthetic.articles`, SciFact sentences) as ONE job
(`POST /jobs/ingest`, NDJSON, the default batch of 500 documents per commit) and polls
`GET /jobs/{id}` until it is final; the other POSTs the same articles one at a time from one
client to `POST /documents` (each answered once committed). Each side runs on a fresh empty
index served by `eval.bench.hashing_app` (the real app, fake 384-dimensional embedder, merges
on), so the figures are the write path's, not the model's. `posts` may be fewer than N: the
single POSTs' rate is then measured over the first `posts` articles (said so in the report).
Reported: seconds, documents/s of each, and the ratio (target >= `JOBS_SPEEDUP`x). Left out:
concurrent POSTs (the writers phase), queries during the job (the ingest phase), the real model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from eval.bench.bases import empty_index
from eval.bench.figures import ratio
from eval.bench.hashing_app import DIMENSION, HASHING_APP
from eval.bench.server import running_app
from eval.bench.synthetic import Article
from index.embedding import HashingEmbedder
from index.settings import IndexSettings

JOBS_SPEEDUP = 5.0  # issue 23: one job of N articles against N single POSTs
REQUEST_SECONDS = 600.0
POLL_SECONDS = 0.5


def jobs_phase(
    work: Path, articles: Sequence[Article], posts: int, say: Callable[[str], None]
) -> dict[str, Any]:
    count = len(articles)
    posts = min(posts, count)
    say(f"  jobs: one job of {count:,} articles")
    job = _serve(work, "jobs-job", lambda url: one_job(url, articles))
    say(f"  jobs: {job['seconds']} s, {job['documents_per_s']} documents/s ({job['state']})")
    say(f"  jobs: {posts:,} single POSTs")
    single = _serve(work, "jobs-posts", lambda url: _single_posts(url, articles[:posts]))
    say(f"  jobs: {single['seconds']} s, {single['documents_per_s']} documents/s")
    return {
        "embedder": f"hashing-fake, dimension {DIMENSION}",
        "documents": count,
        "posts": posts,
        "job": job,
        "single": single,
        "ratio": ratio(job["documents_per_s"], single["documents_per_s"]),
    }


def _serve(work: Path, name: str, run: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    root = empty_index(work / "runs" / name, HashingEmbedder(DIMENSION), IndexSettings())
    with running_app(root, HASHING_APP, work / "runs" / f"{name}.log") as server:
        return run(server.url)


def one_job(
    url: str, articles: Sequence[Article], collection_path: str = "", batch_size: int | None = None
) -> dict[str, Any]:
    """`articles` as one job to the server at `url` (under `collection_path`, such as
    `/collections/bulk`; the default collection when empty; `batch_size`: the server's default
    when None), timed from the submission until the job is final."""
    body = "\n".join(json.dumps(article.payload()) for article in articles).encode("utf-8")
    polls = 0
    with httpx.Client(base_url=url, timeout=REQUEST_SECONDS) as client:
        started = time.perf_counter()
        accepted = client.post(
            f"{collection_path}/jobs/ingest",
            params={} if batch_size is None else {"batch_size": batch_size},
            content=body,
            headers={"content-type": "application/x-ndjson"},
        )
        accepted.raise_for_status()
        answered = time.perf_counter() - started
        job_id, done = accepted.json()["id"], [0]
        while True:
            job = client.get(f"{collection_path}/jobs/{job_id}").json()
            polls += 1
            done.append(job["done"])
            if job["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - started
        documents = len(client.get(f"{collection_path}/documents").json()["documents"])
    return {
        "seconds": round(seconds, 2),
        "accepted_s": round(answered, 3),  # the 202: the body stored durably
        "documents_per_s": round(job["done"] / seconds, 1),
        "state": job["state"],
        "errors": job["errors_total"],
        "done_monotonic": done == sorted(done),
        "polls": polls,
        "documents_final": documents,
    }


def _single_posts(url: str, articles: Sequence[Article]) -> dict[str, Any]:
    failures = 0
    with httpx.Client(base_url=url, timeout=REQUEST_SECONDS) as client:
        started = time.perf_counter()
        for article in articles:
            failures += not client.post("/documents", json=article.payload()).is_success
        seconds = time.perf_counter() - started
        documents = len(client.get("/documents").json()["documents"])
    return {
        "seconds": round(seconds, 2),
        "documents_per_s": round((len(articles) - failures) / seconds, 1),
        "failures": failures,
        "documents_final": documents,
    }


def jobs_targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) of the jobs phase, when it ran."""
    jobs = results.get("jobs", {})
    if jobs.get("ratio") is None:
        return []
    measured = (
        f"{jobs['job']['documents_per_s']}/s vs {jobs['single']['documents_per_s']}/s = {jobs['ratio']:.1f}x"
    )
    verdict = "met" if jobs["ratio"] >= JOBS_SPEEDUP and jobs["job"]["state"] == "succeeded" else "NOT met"
    return [
        (
            f"one ingest job of {jobs['documents']:,} articles >= {JOBS_SPEEDUP:.0f}x single POSTs",
            measured,
            verdict,
        )
    ]


def jobs_markdown(results: dict[str, Any], heading: Callable[[str, str], list[str]]) -> list[str]:
    """The jobs phase's section; `heading(key, title)` is the report's phase heading."""
    jobs = results.get("jobs", {})
    if not jobs.get("job"):
        return []
    job, single = jobs["job"], jobs["single"]
    sampled = "" if jobs["posts"] == jobs["documents"] else f" (the first {jobs['posts']:,} of them)"
    return [
        "",
        *heading("jobs", "Bulk ingest: one job against single POSTs"),
        f"Fake embedder ({jobs['embedder']}); ~3 KB articles of SciFact sentences; each side on a fresh "
        "empty index. The job is one NDJSON `POST /jobs/ingest` (500 documents per commit), timed "
        f"from the request to the job's final state; the single POSTs{sampled} are sent one at a "
        "time from one client.",
        "",
        "| ingest | documents | seconds | documents/s | notes |",
        "|---|---|---|---|---|",
        f"| one job | {jobs['documents']:,} | {job['seconds']} | {job['documents_per_s']} | {job['state']}, "
        f"202 after {job['accepted_s']} s, {job['errors']} refused, progress monotonic: "
        f"{job['done_monotonic']}, {job['documents_final']:,} documents after |",
        f"| single POSTs | {jobs['posts']:,} | {single['seconds']} | {single['documents_per_s']} | "
        f"{single['failures']} failed, {single['documents_final']:,} documents after |",
        "",
        f"Documents/s of the job against single POSTs: {jobs['ratio']}x.",
    ]
