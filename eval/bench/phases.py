"""`python -m eval.bench --phase NAME`: the segmented index's benchmarks, one phase or several.

Phases (each adds its own section to the report; see its module for what it measures):

* `writes` (`eval.bench.writes`): latency of one ~3 KB article POSTed at 5k, 50k, 200k documents;
* `ingest` (`eval.bench.ingest`): an article a second for 10 min into 50k documents under query load;
* `segments` (`eval.bench.segmented`): hybrid query latency over 10 segments vs one merged;
* `footprint` (`eval.bench.footprint`): bytes on disk and in memory per chunk at 100k and 1M chunks;
* `build` (`eval.bench.build_compare`): `rag build` of SciFact with the real model, optionally
  against another commit (`--compare-ref`);
* `large` (`eval.bench.large`): hybrid query latency at 1M chunks in 10 IVF segments (optionally
  against another commit, `--compare-ref`) and dense recall@10 by probes per segment;
* `writers` (`eval.bench.writers`): documents/s of 1 writer against 8 into a fresh index, and the
  live segment count against the server's ceiling (needs no SciFact);
* `filters` (`eval.bench.filtering`): hybrid search over 100k chunks (exact and IVF) unfiltered
  against filters matching 1%, 10% and 50% of the chunks by source and 1% by date, the mask's
  first-use cost, and optionally the unfiltered search against another commit (`--compare-ref`);
  also part of the default run; alone, it updates the main report (eval/reports);
* `jobs` (`eval.bench.jobs`): one bulk ingest job of N articles against N single POSTs
  (documents/s and their ratio); alone, it updates the main report (eval/reports);
* `baseline` (`eval.bench.baseline`): HTTP latency and throughput of the current code against an
  earlier commit's (`--baseline REF`), interleaved in one run on the bundled corpus, and the model
  floor; also part of the default run. Alone, it updates the main report (eval/reports).

`--quick` shrinks each one to a smoke run. The report in `--out` is updated, not replaced: the
sections of phases not run this time are kept, and each phase records when it ran, on which
commit, which files were modified in the working tree (an uncommitted change to index/ is part of
what was measured), the load average before and after, and how much CPU other processes used
meanwhile (the machine may be shared).
Left out: the other original phases (floor, builds, http, scaling, onnx), which run without `--phase`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from corpus import Document
from eval.bench.baseline import baseline_phase
from eval.bench.bases import cached_base_index, working_copy
from eval.bench.build_compare import build_phase
from eval.bench.filtering import filters_phase
from eval.bench.footprint import SentencePool, footprint_phase
from eval.bench.hashing_app import DIMENSION
from eval.bench.ingest import ingest_phase
from eval.bench.jobs import jobs_phase
from eval.bench.large import large_phase
from eval.bench.machine import others_cpu, process_cpu
from eval.bench.report import write_reports
from eval.bench.segmented import segments_phase
from eval.bench.synthetic import (
    Article,
    articles,
    documents_to,
    scifact_documents,
    scifact_questions,
    sentences_of,
)
from eval.bench.writers import writers_phase
from eval.bench.writes import write_phase
from index.embedding import HashingEmbedder
from index.settings import IndexSettings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PHASES = (
    "writes",
    "ingest",
    "segments",
    "footprint",
    "build",
    "writers",
    "large",
    "baseline",
    "filters",
    "jobs",
)
WITHOUT_SCIFACT = {"writers", "baseline"}  # phases that make their own documents
MAIN_REPORT_PHASES = {
    "baseline",
    "filters",
    "jobs",
}  # phases of the default run: alone, they update eval/reports
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")
REPORT_KEYS = {"build": "build_compare"}  # "build" already names the throughput builds' section

# (full, quick) defaults of each phase's size options.
DEFAULTS: dict[str, tuple[Any, Any]] = {
    "writes_sizes": ("5000,50000,200000", "2000,5000"),
    "writes_articles": (30, 10),
    "writes_warmup": (3, 2),
    "writes_rounds": (2, 1),
    "ingest_documents": (50_000, 5_000),
    "ingest_seconds": (600.0, 60.0),
    "ingest_idle_seconds": (60.0, 20.0),
    "ingest_clients": (8, 8),
    "segments_documents": (0, 0),  # 0: all of SciFact
    "segments_queries": (300, 100),
    "footprint_sizes": ("100000,1000000", "10000,100000"),
    "footprint_queries": (100, 50),
    "scifact_docs": (0, 100),  # the build phase's documents; 0: all of SciFact
    "writers_documents": (2_000, 300),
    "large_chunks": (1_000_000, 200_000),
    "large_queries": (100, 50),
    "large_rounds": (2, 1),
    "writers_clients": (8, 8),
    "filters_chunks": (100_000, 20_000),
    "filters_queries": (100, 30),
    "filters_rounds": (2, 1),
    # Odd, so the median of the rounds' ratios is one round's; 3 rounds outvote one hit by a burst.
    "baseline_rounds": (5, 3),
    "baseline_c1_requests": (60, 16),  # per side and round
    "baseline_c32_requests": (320, 96),
    "jobs_documents": (50_000, 1_000),
    "jobs_posts": (50_000, 1_000),  # single POSTs timed (at most jobs_documents)
}


def option(arguments: Any, name: str) -> Any:
    """An option as given, else its full or quick default."""
    given = getattr(arguments, name, None)
    return given if given is not None else DEFAULTS[name][1 if arguments.quick else 0]


def run_phases(arguments: Any, say: Callable[[str], None]) -> dict[str, Any]:
    out, work, scifact = arguments.out, arguments.work_dir, arguments.scifact
    needs_scifact = not set(arguments.phase) <= WITHOUT_SCIFACT
    if needs_scifact and (scifact is None or not (scifact / "corpus.jsonl").is_file()):
        raise SystemExit(f"--scifact {scifact}: no corpus.jsonl there (these phases need SciFact)")
    previous = out / "bench.json"
    results: dict[str, Any] = json.loads(previous.read_text("utf-8")) if previous.is_file() else {}
    results.setdefault("started", time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    results.setdefault("cpus", os.cpu_count())
    results.setdefault("quick", arguments.quick)

    def save() -> None:
        write_reports(results, out)

    corpus = scifact_documents(scifact) if needs_scifact else []
    questions = scifact_questions(scifact) if needs_scifact else []
    sentences = sentences_of(corpus)
    for phase in dict.fromkeys(arguments.phase):
        key = REPORT_KEYS.get(phase, phase)
        run = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "quick": arguments.quick,
            "load_before": [round(value, 2) for value in os.getloadavg()],
            # Thread settings of BLAS change query latency several times over (eval.bench.segmented).
            "environment": {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
            **git_state(),
        }
        results.setdefault("phase_runs", {})[key] = run
        results[key] = {}
        began, processes = time.perf_counter(), process_cpu()
        say(f"{phase}:")
        if phase == "writes":
            sizes = [int(size) for size in str(option(arguments, "writes_sizes")).split(",")]
            count, warm = option(arguments, "writes_articles"), option(arguments, "writes_warmup")

            def articles_for(
                size: int, warm: int = warm, count: int = count
            ) -> tuple[list[Article], list[Article]]:
                return articles(sentences, warm, f"ww{size}"), articles(sentences, count, f"wm{size}")

            results[key]["documents_source"] = DOCUMENTS_SOURCE
            write_phase(
                work,
                sizes,
                lambda size: documents_to(corpus, size),
                articles_for,
                say,
                save,
                results[key],
                rounds=option(arguments, "writes_rounds"),
            )
        elif phase == "ingest":
            documents = documents_to(corpus, option(arguments, "ingest_documents"))
            say(f"  ingest: base index of {len(documents):,} documents")
            base, _ = cached_base_index(work, "base", documents, HashingEmbedder(DIMENSION), IndexSettings())
            del documents
            seconds = float(option(arguments, "ingest_seconds"))
            served = working_copy(base, work / "runs" / "ingest")
            results[key] = ingest_phase(
                served,
                work / "runs" / "ingest.log",
                questions,
                articles(sentences, int(seconds) + 30, "ing"),
                option(arguments, "ingest_clients"),
                float(option(arguments, "ingest_idle_seconds")),
                seconds,
                say,
            )
            results[key]["documents_source"] = DOCUMENTS_SOURCE
        elif phase == "segments":
            limit = option(arguments, "segments_documents")
            results[key] = segments_phase(
                work,
                corpus[:limit] if limit else corpus,
                questions[: option(arguments, "segments_queries")],
                say,
            )
        elif phase == "footprint":
            say("  footprint: sentence pool (terms of every SciFact sentence)")
            pool = SentencePool.of(sentences, [document.title for document in corpus if document.title])
            sizes = [int(size) for size in str(option(arguments, "footprint_sizes")).split(",")]
            footprint_phase(
                work, sizes, pool, scifact, option(arguments, "footprint_queries"), say, save, results[key]
            )
        elif phase == "build":
            results[key] = build_phase(
                scifact, option(arguments, "scifact_docs") or None, arguments.compare_ref, say
            )
        elif phase == "large":
            say("  large: sentence pool (terms of every SciFact sentence)")
            pool = SentencePool.of(sentences, [document.title for document in corpus if document.title])
            results[key] = large_phase(
                work,
                pool,
                corpus,
                questions,
                scifact,
                option(arguments, "large_chunks"),
                option(arguments, "large_queries"),
                option(arguments, "large_rounds"),
                arguments.compare_ref,
                say,
            )
        elif phase == "writers":
            results[key] = writers_phase(
                work, option(arguments, "writers_documents"), option(arguments, "writers_clients"), say
            )
        elif phase == "baseline":
            results[key] = run_baseline(arguments, say)
        elif phase == "filters":
            results[key] = run_filters(arguments, corpus, questions, say)
        elif phase == "jobs":
            count = option(arguments, "jobs_documents")
            say(f"  jobs: {count:,} articles")
            results[key] = jobs_phase(
                work, articles(sentences, count, "jb"), option(arguments, "jobs_posts"), say
            )
        run["seconds"] = round(time.perf_counter() - began, 1)
        run["load_after"] = [round(value, 2) for value in os.getloadavg()]
        run["others"] = others_cpu(processes, process_cpu(), run["seconds"])
        save()
    return results


DOCUMENTS_SOURCE = (
    "SciFact abstracts by id; past its 5,183, copies of them under new ids, each copy's sentences "
    "rotated and one sentence naming the copy appended (eval.bench.synthetic.documents_to)"
)


def run_baseline(arguments: Any, say: Callable[[str], None]) -> dict[str, Any]:
    """The baseline phase with its options (`--baseline`, rounds and requests, full or quick)."""
    requests = {1: option(arguments, "baseline_c1_requests"), 32: option(arguments, "baseline_c32_requests")}
    return baseline_phase(
        arguments.baseline,
        option(arguments, "baseline_rounds"),
        requests,
        say,
    )


def run_filters(
    arguments: Any, corpus: Sequence[Document], questions: Sequence[str], say: Callable[[str], None]
) -> dict[str, Any]:
    """The filters phase with its options (`--filters-*`, `--compare-ref`), full or quick."""
    say("  filters: sentence pool (terms of every SciFact sentence)")
    pool = SentencePool.of(sentences_of(corpus), [document.title for document in corpus if document.title])
    return filters_phase(
        arguments.work_dir,
        pool,
        questions,
        option(arguments, "filters_chunks"),
        option(arguments, "filters_queries"),
        option(arguments, "filters_rounds"),
        arguments.compare_ref,
        say,
    )


def git_state() -> dict[str, Any]:
    """The commit and the working tree's modified files: what code was measured."""

    def git(*words: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), *words], capture_output=True, text=True, check=False
        )
        return done.stdout.rstrip("\n")  # not strip(): porcelain lines start with a space

    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "modified": [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()],
    }
