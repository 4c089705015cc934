"""`rag eval`, and the `rag` entry point that attaches it to the service's command line.

Retrieval evaluation of every mode on a project set or a BEIR data set. This is where evaluation
meets settings (the rest of `eval` takes plain arguments): the index, model and retrieval options
come from the same `Settings` as the service, or `--against URL` evaluates a running service over
HTTP instead. Dependencies point one way: this module imports the service, never the reverse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import click
from click.decorators import FC

from corpus import CorpusError, load_corpus
from eval.backends import DOCUMENT_MODES, Backend, BackendError, DocumentMode, HttpBackend, InProcessBackend
from eval.beir import cached_index, cached_ranking_index
from eval.calibrate import DEFAULT_SIGNALS, THRESHOLDS, Observation, fit, observe, trade_off, write_model
from eval.report import EvalReport, render_table, write_json
from eval.sets import EvalSetError, load_beir_set, load_question_set, set_documents
from index.errors import IndexError_
from index.search.answerability import MODEL_FILE, SIGNALS
from index.search.modes import Mode
from index.search.retrieval import Retriever
from service.cli import cli as service_cli
from service.cli import errors_as_messages
from service.config import PROJECT_ROOT, Settings, get_settings
from service.engine import Engine, embedder_for, question_encoder_for

DEFAULT_CACHE = PROJECT_ROOT / ".rag" / "eval"
PASSAGE_MODES = tuple(mode.value for mode in Mode)
ModeT = TypeVar("ModeT", bound=DocumentMode)


class _SetOrSubcommand(click.Group):
    """`rag eval SET ...` is short for `rag eval set SET ...`; `rag eval beir DIR` is a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["set", *args]
        return super().parse_args(ctx, args)


def _common(command: Any, modes: tuple[str, ...] = PASSAGE_MODES, modes_help: str = "") -> Any:
    options = [
        click.option(
            "--mode",
            "modes",
            multiple=True,
            type=click.Choice(modes),
            help="Modes to compare (repeatable; default: all). `dense` is the baseline of the tests."
            + modes_help,
        ),
        click.option("--save-run", type=click.Path(path_type=Path), help="Write DIR/<mode>.trec run files."),
        click.option(
            "--json", "json_path", type=click.Path(path_type=Path), help="Write the report as JSON."
        ),
        click.option("--against", metavar="URL", help="Evaluate a running service at URL over HTTP."),
        click.option(
            "--test",
            type=click.Choice(["fisher", "student"]),
            default="fisher",
            show_default=True,
            help="Paired significance test against `dense`: Fisher randomisation or Student t.",
        ),
        click.option("--max-p", type=float, default=0.05, show_default=True, help="Significance level."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]
    for option in reversed(options):
        command = option(command)
    return _friendly_errors(command)


def _eval_disk_full(reason: str) -> str:
    # What an evaluation writes is its cache and reports, never the service's index.
    return f"the disk is full ({reason}): free some space and run the evaluation again"


_friendly_errors = errors_as_messages(
    EvalSetError, BackendError, CorpusError, IndexError_, full_disk=_eval_disk_full
)


def _cache_dir(what: str) -> Callable[[FC], FC]:
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_CACHE,
        show_default=True,
        help=f"Where {what} are cached between runs.",
    )


@click.group("eval", cls=_SetOrSubcommand)
def eval_command() -> None:
    """Evaluate retrieval: every mode in one run, one table, paired tests against `dense`.

    \b
    Examples:
      rag eval eval/sets/seed-articles.jsonl
      rag eval beir ../shared/beir/scifact --split train --json reports/scifact.json
      rag eval eval/sets/seed-articles.jsonl --against http://127.0.0.1:9000 --save-run runs/
      rag eval eval/sets/scifact-heldout.jsonl --corpus ../shared/beir/scifact/corpus.jsonl
      rag eval calibrate --fit eval/sets/seed-articles.jsonl --check eval/sets/scifact-heldout.jsonl:CORPUS
    """


@eval_command.command("set")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-k", "k", default=10, show_default=True, help="Passages per question.")
@click.option(
    "--corpus",
    type=click.Path(exists=True, path_type=Path),
    help="Ask the set of an index of the documents it lists (SET.corpus.txt) read from this file or "
    "folder, built with the service's settings (cached under --cache-dir), not of the built index.",
)
@_cache_dir("indexes built with --corpus")
@_common
def eval_set(path: Path, k: int, corpus: Path | None, cache_dir: Path, **options: Any) -> None:
    """Evaluate a project question set (JSON Lines with gold answer substrings): on the built
    index, or with --corpus on an index of the documents the set is written over."""
    from eval.runner import evaluate_project_set  # pulls in ranx, slow to import: only when needed

    settings = get_settings()
    questions = load_question_set(path)
    backend: Backend
    if options["against"]:
        backend = HttpBackend(options["against"])
    else:
        retriever = _retriever(settings, path, corpus, cache_dir, not options["quiet"])
        backend = InProcessBackend(retriever, question_encoder_for(settings, retriever.embedder))
    report = evaluate_project_set(
        path.stem,
        questions,
        backend,
        _modes(options, tuple(Mode)),
        k=k,
        test=options["test"],
        max_p=options["max_p"],
        save_run_dir=options["save_run"],
        progress=not options["quiet"],
    )
    _finish(report, settings, options)


def _retriever(
    settings: Settings, path: Path, corpus: Path | None, cache_dir: Path, show_progress: bool = False
) -> Retriever:
    """The built index's retriever, or with `corpus` one over an index (cached in `cache_dir`)
    of the documents the set at `path` is written over."""
    if corpus is None:
        return Engine.from_settings(settings).retriever
    embedder = embedder_for(settings)
    documents = set_documents(path, corpus)
    reader = cached_index(documents, embedder, settings.index_settings(), cache_dir, show_progress)
    return Retriever(reader, embedder, settings.retrieval_options())


def _set_spec(spec: str) -> tuple[Path, Path | None]:
    path, _, corpus = spec.partition(":")
    for named in (path, corpus):
        if named and not Path(named).exists():
            raise click.BadParameter(f"{named} does not exist", param_hint=f"'{spec}'")
    return Path(path), Path(corpus) if corpus else None


@eval_command.command("calibrate")
@click.option(
    "--fit",
    "fit_specs",
    multiple=True,
    required=True,
    metavar="SET[:CORPUS]",
    help="A set to fit on (repeatable). With :CORPUS, asked of an index of the documents it lists "
    "(SET.corpus.txt) read from CORPUS, as `rag eval SET --corpus CORPUS` does.",
)
@click.option(
    "--check",
    "check_specs",
    multiple=True,
    metavar="SET[:CORPUS]",
    help="A held-out set (repeatable): its table is shown, it is never fitted on.",
)
@click.option(
    "--signal",
    "signals",
    multiple=True,
    type=click.Choice(SIGNALS),
    help=f"A signal the model uses (repeatable; default: {', '.join(DEFAULT_SIGNALS)}).",
)
@click.option("-C", "inverse_regularization", default=1.0, show_default=True, help="1 / L2 strength.")
@click.option("--write", is_flag=True, help=f"Store the fitted model in {MODEL_FILE}.")
@_cache_dir("indexes of SET:CORPUS sets")
@_friendly_errors
def eval_calibrate(
    fit_specs: tuple[str, ...],
    check_specs: tuple[str, ...],
    signals: tuple[str, ...],
    inverse_regularization: float,
    write: bool,
    cache_dir: Path,
) -> None:
    """Fit the answerability model (a logistic regression over signals of a hybrid search) and
    show, per threshold, the share of answerable and of each kind of unanswerable question
    flagged, on the fit sets and on held-out ones. Choose RAG_ANSWERABLE_THRESHOLD from the fit
    sets' table; the held-out table checks it.

    \b
    Example:
      rag eval calibrate --fit eval/sets/seed-articles.jsonl \\
        --fit eval/sets/scifact-fit.jsonl:../shared/beir/scifact/corpus.jsonl \\
        --check eval/sets/scifact-heldout.jsonl:../shared/beir/scifact/corpus.jsonl
    """
    settings = get_settings()

    def observed(spec: str) -> tuple[str, list[Observation]]:
        path, corpus = _set_spec(spec)
        return path.stem, observe(load_question_set(path), _retriever(settings, path, corpus, cache_dir))

    fitted = [observed(spec) for spec in fit_specs]
    chosen = signals or DEFAULT_SIGNALS
    model = fit([o for _, observations in fitted for o in observations], chosen, inverse_regularization)
    click.echo(f"bias {model.bias:.4f} weights { ({n: round(w, 4) for n, w in model.weights.items()}) }")
    thresholds = (*THRESHOLDS, settings.answerable_threshold)
    for role, sets in (("fitted", fitted), ("held out", [observed(spec) for spec in check_specs])):
        for name, observations in sets:
            click.echo(f"\n{name} ({role}, {len(observations)} questions)\n")
            click.echo(trade_off(model, observations, thresholds))
    if write:
        command = "rag eval calibrate " + " ".join(
            [*(f"--fit {spec}" for spec in fit_specs), *(f"--signal {name}" for name in chosen)]
        )
        command += f" -C {inverse_regularization} --write"
        write_model(MODEL_FILE, model, {name: len(o) for name, o in fitted}, command)
        click.echo(f"\nmodel written to {MODEL_FILE}")


def _beir_common(command: Any) -> Any:
    return _common(
        command,
        tuple(str(mode) for mode in DOCUMENT_MODES),
        " `hybrid-doc` fuses dense and BM25 per document (each document's best passage per signal),"
        " `hybrid-doc-prf` also moves the query vector towards the top document's passage and"
        " searches again (Rocchio feedback); with --against both go to POST /search/documents.",
    )


@eval_command.command("beir")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--split", default="test", show_default=True, help="Which qrels/<split>.tsv to judge by.")
@_cache_dir("the corpus's embeddings and index")
@_beir_common
def eval_beir(directory: Path, split: str, cache_dir: Path, **options: Any) -> None:
    """Evaluate on a BEIR-layout data set (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv).

    In-process, the corpus is indexed with the service's pipeline and settings (cached under
    --cache-dir); with --against, the service must already hold that corpus.
    """
    from eval.runner import evaluate_beir_set  # pulls in ranx, slow to import: only when needed

    settings = get_settings()
    data = load_beir_set(directory, split)
    backend: Backend
    if options["against"]:
        backend = HttpBackend(options["against"])
    else:
        embedder = Engine.from_settings(settings).embedder  # the configured model; no index loaded
        documents = load_corpus([data.corpus_path])
        reader = cached_ranking_index(
            documents, embedder, settings.index_settings(), cache_dir, show_progress=not options["quiet"]
        )
        backend = InProcessBackend(
            Retriever(reader, embedder, settings.retrieval_options()),
            question_encoder_for(settings, embedder),
        )
    report = evaluate_beir_set(
        f"{directory.name} ({split})",
        data,
        backend,
        _modes(options, DOCUMENT_MODES),
        test=options["test"],
        max_p=options["max_p"],
        save_run_dir=options["save_run"],
        progress=not options["quiet"],
    )
    _finish(report, settings, options)


def _modes(options: dict[str, Any], default: tuple[ModeT, ...]) -> list[ModeT]:
    chosen: tuple[ModeT, ...] = options["modes"] or default
    # dense first: it is the baseline every other mode is tested against
    return sorted(chosen, key=lambda mode: (mode != "dense", DOCUMENT_MODES.index(mode)))


def _finish(report: EvalReport, settings: Settings, options: dict[str, Any]) -> None:
    report.details["against"] = options["against"]
    if not options["against"]:
        report.details["settings"] = {
            "model": settings.model,
            "index": settings.index_settings().to_dict(),
            "retrieval": asdict(settings.retrieval_options()),
        }
    click.echo(render_table(report))
    if options["json_path"]:
        write_json(options["json_path"], [report])
        click.echo(f"\nreport written to {options['json_path']}")


# The whole `rag` command line: the service's commands and `rag eval`, without adding to the
# service's own group (which must not depend on eval).
rag = click.Group(
    name="rag",
    commands={**service_cli.commands, "eval": eval_command},
    callback=service_cli.callback,
    help=service_cli.help,
)


def main() -> None:
    rag(prog_name="rag")


if __name__ == "__main__":  # pragma: no cover
    main()
