"""`rag eval`, and the `rag` entry point that attaches it to the service's command line.

Retrieval evaluation of every mode on a project set or a BEIR data set. This is where evaluation
meets settings (the rest of `eval` takes plain arguments): the index, model and retrieval options
come from the same `Settings` as the service, or `--against URL` evaluates a running service over
HTTP instead. Dependencies point one way: this module imports the service, never the reverse.
"""

from __future__ import annotations

import functools
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import click

from corpus import CorpusError, load_corpus
from eval.backends import DOCUMENT_MODES, Backend, BackendError, DocumentMode, HttpBackend, InProcessBackend
from eval.beir import cached_index, cached_ranking_index
from eval.report import EvalReport, render_table, write_json
from eval.sets import EvalSetError, corpus_ids, load_beir_set, load_question_set
from index.errors import IndexError_
from index.modes import Mode
from index.retrieval import Retriever
from service.cli import cli as service_cli
from service.config import PROJECT_ROOT, Settings, get_settings
from service.engine import Engine

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


def _friendly_errors(command: Any) -> Any:
    """Named errors become one clear line on stderr and exit status 1, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (EvalSetError, BackendError, CorpusError, IndexError_) as error:
            raise click.ClickException(str(error)) from error

    return wrapper


@click.group("eval", cls=_SetOrSubcommand)
def eval_command() -> None:
    """Evaluate retrieval: every mode in one run, one table, paired tests against `dense`.

    \b
    Examples:
      rag eval eval/sets/seed-articles.jsonl
      rag eval beir ../shared/beir/scifact --split train --json reports/scifact.json
      rag eval eval/sets/seed-articles.jsonl --against http://127.0.0.1:9000 --save-run runs/
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
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_CACHE,
    show_default=True,
    help="Where indexes built with --corpus are cached between runs.",
)
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
    elif corpus is not None:
        embedder = Engine.from_settings(settings).embedder
        wanted = corpus_ids(path)
        documents = [d for d in load_corpus([corpus]) if wanted is None or d.id in set(wanted)]
        missing = sorted(set(wanted or []) - {d.id for d in documents})
        if missing:
            raise EvalSetError(
                f"{corpus} lacks documents {path.stem} is written over: {', '.join(missing[:5])}"
            )
        reader = cached_index(
            documents, embedder, settings.index_settings(), cache_dir, show_progress=not options["quiet"]
        )
        backend = InProcessBackend(Retriever(reader, embedder, settings.retrieval_options()))
    else:
        backend = InProcessBackend(Engine.from_settings(settings).retriever)
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
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_CACHE,
    show_default=True,
    help="Where the corpus's embeddings and index are cached between runs.",
)
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
        backend = InProcessBackend(Retriever(reader, embedder, settings.retrieval_options()))
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
