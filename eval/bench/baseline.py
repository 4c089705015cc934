"""The `baseline` phase: the HTTP figures of an earlier commit beside the current code's, one run.

Why: the other phases measure only the tree they run in, so a slower query path shows only when
someone compares two reports made on different days, under different loads. Here both run in
the same minutes on the same machine, interleaved, and a regression is flagged in the report.

Which baseline (`choose_baseline`): `--baseline REF` when given (`none`: no baseline); else the
newest `v*` tag reachable from HEAD that is not on HEAD itself (the release before the code
measured); else `origin/main`, else `main`, the first that exists and is not HEAD (what a branch
changes); else HEAD if the working tree modifies index/, service/ or corpus/ (what the uncommitted
change does); else none. With none, or one that cannot be checked out, built or served, the phase says why in the report
and holds the current code against the model floor only: it never fails the run.

How: REF is checked out (detached) in a temporary `git worktree`, removed afterwards whatever
happens; the user's working tree is never touched. Each side builds its own index of the bundled
corpus (`corpus/articles`, 3 articles, seconds with the real model) with its own code, so a
changed index format needs nothing special, and serves it with `python -m eval.cli serve`, its
code first on PYTHONPATH, the same virtualenv and default settings (`server.running_code`). The
two servers run side by side through rounds: the model floor (`eval.bench.encoding`, one question
alone and batches of 8, in a process of its own with the servers' thread settings), then c=1 and
c=32 `GET /search` with the seed questions rotating, each concurrency's two runs back to back,
which side goes first alternating. current/baseline is the median of the rounds' own ratios.

Left out: other modes than hybrid, builds (the `build` phase compares those with
`--compare-ref`), SciFact-sized indexes, and the verdicts and markdown (`baseline_report`).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Collection, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from eval.bench.baseline_report import THRESHOLD, by_round, comparison, regressions
from eval.bench.build_compare import timed_build, worktree
from eval.bench.encoding import floor_process
from eval.bench.load import LoadFigures, pooled, run_load
from eval.bench.server import RunningServer, ServerError, code_environment, running_code
from service.cli import OPENMP_ENVIRONMENT

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CORPUS = PROJECT_ROOT / "corpus" / "articles"
QUESTIONS = PROJECT_ROOT / "eval" / "sets" / "seed-articles.jsonl"
MODE = "hybrid"  # the service's default mode, the one the HTTP targets are stated for
NO_BASELINE = ("none", "")
BRANCHES = ("origin/main", "main")  # the baseline when there is no release, the first not HEAD
SERVED_CODE = ("index/", "service/", "corpus/")  # what a working tree's change makes worth measuring
# What a baseline that cannot be checked out, built or served raises: the phase then goes on
# against the floor alone. Anything else is a fault of the benchmark and stops it.
BASELINE_FAILURES = (subprocess.CalledProcessError, RuntimeError, OSError, httpx.HTTPError, ValueError)


@dataclass(frozen=True)
class Choice:
    ref: str | None
    reason: str


def choose_baseline(
    given: str | None,
    release_tags: Sequence[str],
    tags_at_head: Collection[str],
    branches_elsewhere: Sequence[str],
    modified: Sequence[str],
) -> Choice:
    """The baseline ref and why. `release_tags`: the `v*` tags reachable from HEAD, newest
    version first; `tags_at_head`: those on HEAD itself (a release measured against itself
    would show nothing); `branches_elsewhere`: of `BRANCHES`, those that exist and are not HEAD;
    `modified`: the working tree's modified tracked files."""
    if given is not None:
        if given.strip().lower() in NO_BASELINE:
            return Choice(None, "--baseline none")
        return Choice(given, "given with --baseline")
    earlier = [tag for tag in release_tags if tag not in tags_at_head]
    if earlier:
        return Choice(earlier[0], "the newest v* tag before HEAD")
    if branches_elsewhere:
        return Choice(branches_elsewhere[0], f"no v* tag before HEAD; {branches_elsewhere[0]} is not HEAD")
    if any(path.startswith(SERVED_CODE) for path in modified):
        return Choice(
            "HEAD", "no v* tag before HEAD, no other main; the working tree changes the served code"
        )
    return Choice(
        None,
        "no v* tag before HEAD, no main other than HEAD, no change to the served code; pass --baseline REF",
    )


def _git(*words: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), *words], capture_output=True, text=True, check=False
    )
    return done.stdout.rstrip("\n") if done.returncode == 0 else ""  # porcelain lines start with " "


def _modified() -> list[str]:
    return [line[3:] for line in _git("status", "--porcelain", "--untracked-files=no").splitlines()]


def default_choice(given: str | None) -> Choice:
    """`choose_baseline` on this repository's tags, branches and working tree."""
    tags = _git("tag", "--list", "v*", "--merged", "HEAD", "--sort=-v:refname").split()
    at_head = set(_git("tag", "--list", "v*", "--points-at", "HEAD").split())
    head = _git("rev-parse", "HEAD")
    commits = {
        branch: _git("rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}") for branch in BRANCHES
    }
    elsewhere = [branch for branch, commit in commits.items() if commit and commit != head]
    return choose_baseline(given, tags, at_head, elsewhere, _modified())


def baseline_phase(
    given: str | None,
    rounds: int,
    requests: dict[int, int],
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Measure the current code (and the baseline's, if there is a usable one); `requests`:
    requests per turn at concurrency 1 and 32."""
    choice = default_choice(given)
    figures: dict[str, Any] = {
        "baseline_ref": choice.ref,
        "chosen": choice.reason,
        "current": {"commit": _git("rev-parse", "--short", "HEAD"), "modified": _modified()},
        "threshold": THRESHOLD,
        "mode": MODE,
        "rounds": rounds,
        "requests": {f"c{concurrency}": count for concurrency, count in requests.items()},
        "corpus": str(CORPUS.relative_to(PROJECT_ROOT)),
    }
    lines = QUESTIONS.read_text("utf-8").splitlines()
    questions = list(dict.fromkeys(json.loads(line)["question"] for line in lines if line.strip()))
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as scratch, ExitStack() as stack:
        servers = {"current": _side(stack, PROJECT_ROOT, Path(scratch) / "current", questions, figures, say)}
        if choice.ref is not None:
            say(f"  baseline: {choice.ref} ({choice.reason})")
            baseline = stack.enter_context(ExitStack())  # its worktree and server, closed on failure
            try:
                code = baseline.enter_context(worktree(choice.ref))
                figures["baseline_commit"] = _short_commit(code)
                servers["baseline"] = _side(
                    baseline, code, Path(scratch) / "baseline", questions, figures, say
                )
            except BASELINE_FAILURES as error:
                baseline.close()
                figures.pop("baseline_commit", None)
                for key in ("indexes", "servers"):  # what a half-set-up baseline left
                    figures.get(key, {}).pop("baseline", None)
                figures["unusable"] = _failure(error)
                say(f"  baseline unusable, floor only: {figures['unusable']}")
        else:
            say(f"  no baseline ({choice.reason}): the floor only")
        environment = {**code_environment(PROJECT_ROOT), "TOKENIZERS_PARALLELISM": "false"}
        # As `rag serve` sets it for itself (service.cli): the floor runs as the servers do.
        for name, value in OPENMP_ENVIRONMENT.items():
            environment.setdefault(name, value)
        say("  floor: load the model in a process of its own")
        floor = stack.enter_context(floor_process(questions, (8,), environment, Path(scratch) / "floor.log"))
        runs, floors = _rounds(servers, questions, floor, rounds, requests, say)
        for side, server in servers.items():
            figures.setdefault("servers", {})[side]["peak_memory_mb"] = server.peak_memory_mb()
    figures["floor"] = {
        key: round(statistics.median(each[key] for each in floors), 2)
        if isinstance(value, float | int)
        else value
        for key, value in floors[0].items()
    }
    figures["runs"] = {
        side: {f"c{c}": pooled(by_concurrency[c]).as_dict() for c in requests}
        for side, by_concurrency in runs.items()
    }
    for side in runs:
        figures["servers"][side]["errors"] = sum(run["errors"] for run in figures["runs"][side].values())
    figures["by_round"] = by_round(
        {
            side: [{f"c{c}": by_concurrency[c][n].as_dict() for c in requests} for n in range(rounds)]
            for side, by_concurrency in runs.items()
        }
    )
    figures["comparison"] = comparison(
        figures["runs"]["current"], figures["runs"].get("baseline"), figures["floor"], figures["by_round"]
    )
    figures["regressions"] = regressions(figures["comparison"])
    return figures


def _side(
    stack: ExitStack,
    code: Path,
    scratch: Path,
    questions: list[str],
    figures: dict[str, Any],
    say: Callable[[str], None],
) -> RunningServer:
    """Build the bundled corpus with the code in `code` and serve it (stopped when `stack`
    closes); its figures go under its name in `figures`."""
    side = scratch.name
    scratch.mkdir(parents=True)
    say(f"  {side}: build the bundled corpus with the code in {code}")
    built = timed_build(code, CORPUS, scratch / "index")
    figures.setdefault("indexes", {})[side] = {key: built[key] for key in ("documents", "chunks", "seconds")}
    say(f"  {side}: serve it")
    server = stack.enter_context(running_code(code, scratch / "index", questions[0], scratch / "server.log"))
    # An old server may lack `GET /search` or the `mode` parameter: better found out before timing.
    probe = httpx.get(f"{server.url}/search", params={"q": questions[0], "k": 5, "mode": MODE}, timeout=60)
    if probe.status_code != 200:
        raise ServerError(f"{side}: GET /search answered {probe.status_code}: {probe.text[:300]}")
    figures.setdefault("servers", {})[side] = {
        "startup_s": round(server.startup_seconds, 2),
        "memory_after_start_mb": server.memory_mb(),
    }
    return server


def _rounds(
    servers: dict[str, RunningServer],
    questions: list[str],
    floor: Callable[[], dict[str, float]],
    rounds: int,
    requests: dict[int, int],
    say: Callable[[str], None],
) -> tuple[dict[str, dict[int, list[LoadFigures]]], list[dict[str, float]]]:
    """Every side's runs by concurrency, one per round, and the floor of each round. Within a
    round each concurrency's runs of the two sides follow each other, the side that goes first
    alternating (current first at c=1 and the baseline at c=32, then the other way round), so
    each round's pair of runs shares the machine's state of the moment."""
    runs: dict[str, dict[int, list[LoadFigures]]] = {side: {c: [] for c in requests} for side in servers}
    floors = []
    sides = list(servers)
    for number in range(rounds):
        say(f"  round {number + 1} of {rounds}: floor, then {', '.join(sides)} at each concurrency")
        floors.append(floor())
        # Each round starts further along the questions; both sides ask the same ones in it.
        start = number * max(requests.values()) % len(questions)
        rotated = questions[start:] + questions[:start]
        for step, (concurrency, count) in enumerate(requests.items()):
            for side in sides if (number + step) % 2 == 0 else sides[::-1]:
                server = servers[side]
                run = run_load(server.url, rotated, concurrency, count, MODE, server.cpu_seconds, get=True)
                runs[side][concurrency].append(run)
    return runs, floors


def _short_commit(code: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _failure(error: BaseException) -> str:
    detail = error.stderr if isinstance(error, subprocess.CalledProcessError) else ""
    if isinstance(detail, bytes):
        detail = detail.decode(errors="replace")
    text = f"{type(error).__name__}: {error} {detail or ''}".strip()
    return text[-1500:]
