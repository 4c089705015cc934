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
* `pq` (`eval.bench.compressed`): recall@10, latency, bytes of IVF-PQ and IVF-SQ8 vs IVFFlat at 1M;
* `writers` (`eval.bench.writers`): documents/s of 1 writer against 8 into a fresh index, and the
  live segment count against the server's ceiling (needs no SciFact);
* `filters` (`eval.bench.filtering`): hybrid search over 100k chunks (exact and IVF) unfiltered
  against filters matching 1%, 10% and 50% of the chunks by source and 1% by date, the mask's
  first-use cost, and optionally the unfiltered search against another commit (`--compare-ref`);
  also part of the default run; alone, it updates the main report (eval/reports);
* `observability` (`eval.bench.observability`): HTTP latency and throughput with metrics and
  request logs on against off, interleaved on the corpus `--observability-corpus` names (the
  bundled one by default); alone, it updates the main report (eval/reports);
* `jobs` (`eval.bench.jobs`): one bulk ingest job of N articles against N single POSTs
  (documents/s and their ratio); alone, it updates the main report (eval/reports);
* `baseline` (`eval.bench.baseline`): HTTP latency and throughput of the current code against an
  earlier commit's (`--baseline REF`), interleaved in one run on the bundled corpus, and the model
  floor; also part of the default run. Alone, it updates the main report (eval/reports).
* `cluster` (`eval.bench.cluster`, issue 22): on a local Ray cluster (head + worker node; needs
  root for `unshare` and the `cluster` extra), `rag build --cluster` with 2 embedding actors
  against 1 and against `rag build` here; the sharded service (`rag serve --cluster`) against
  the single-process one at c=1 and c=32; writes during ingest on both. Not part of the default
  run; it updates the main report (eval/reports).

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
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from corpus import Document
from eval.bench.baseline import baseline_phase
from eval.bench.bases import cached_base_index, working_copy
from eval.bench.build_compare import build_phase
from eval.bench.compressed import pq_phase
from eval.bench.filtering import filters_phase
from eval.bench.footprint import SentencePool, footprint_phase
from eval.bench.hashing_app import DIMENSION
from eval.bench.ingest import ingest_phase
from eval.bench.jobs import jobs_phase
from eval.bench.large import large_phase
from eval.bench.machine import others_cpu, process_cpu
from eval.bench.observability import observability_phase
from eval.bench.phase_sizes import DEFAULTS
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
PHASES: tuple[str, ...] = ("writes", "ingest", "segments", "footprint", "build", "writers", "large")
PHASES += ("baseline", "filters", "cluster", "pq", "observability", "jobs")
WITHOUT_SCIFACT = {"writers", "baseline", "observability"}  # phases that make their own documents
# Phases whose section is in the main report (eval/reports): the default run's baseline and
# filters, and the cluster, observability and jobs phases (run only when asked for).
MAIN_REPORT_PHASES = {"baseline", "filters", "cluster", "observability", "jobs"}
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")
REPORT_KEYS = {"build": "build_compare"}  # "build" already names the throughput builds' section


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
            "command": shlex.join(["python", "-m", "eval.bench", *sys.argv[1:]]),
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
        elif phase == "pq":
            results[key] = pq_phase(
                work, corpus, questions, option(arguments, "pq_chunks"), option(arguments, "pq_queries"), say
            )
        elif phase == "writers":
            results[key] = writers_phase(
                work, option(arguments, "writers_documents"), option(arguments, "writers_clients"), say
            )
        elif phase == "baseline":
            results[key] = run_baseline(arguments, say)
        elif phase == "filters":
            results[key] = run_filters(arguments, corpus, questions, say)
        elif phase == "cluster":
            from eval.bench.cluster import run_cluster

            run_cluster(arguments, questions, sentences, results[key], save, say)
        elif phase == "observability":
            results[key] = observability_phase(
                arguments.observability_corpus,
                option(arguments, "observability_rounds"),
                {
                    1: option(arguments, "observability_c1_requests"),
                    32: option(arguments, "observability_c32_requests"),
                },
                say,
            )
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
