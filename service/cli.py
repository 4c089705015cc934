"""The `rag` command line: build the index, serve it, ask it questions, change documents.

`rag eval` is attached by the entry point (`eval.cli:main`), so the service never imports the
evaluation code that measures it.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from pydantic import ValidationError

from corpus import SUPPORTED_SUFFIXES, CorpusError, Document, load_corpus
from index.errors import IndexError_, StorageFullError
from index.search.filters import Filter
from index.search.modes import Mode
from index.search.options import DEFAULT_K, DEFAULT_MODE
from index.search.retrieval import SearchOutcome
from index.write.changes import WriteResult
from index.write.restoring import Recovery
from service import bulk_add
from service.cluster import use_ray_defaults
from service.cluster.commands import cluster
from service.collection_names import DEFAULT_COLLECTION, InvalidCollectionNameError, checked_collection_name
from service.collections import CollectionNotFoundError, Collections, collection_dir, open_collection
from service.config import EmbedderKind, Settings, get_settings
from service.engine import DocumentNotFoundError, Engine, embedder_for
from service.filter_schema import QueryFilter, QuestionDates, SearchFilter, validation_message
from service.queries import InvalidQueryError, checked_k, checked_query
from service.results import applied_filters, search_response
from service.storage import full_disk_reason, remove_leftovers

if TYPE_CHECKING:
    from index.cluster.embedding import ClusterEmbedder  # imports Ray: only for cluster builds

F = TypeVar("F", bound=Callable[..., Any])
Done = TypeVar("Done")


def errors_as_messages(*named: type[Exception], full_disk: Callable[[str], str]) -> Callable[[F], F]:
    """A decorator: the `named` errors, and a full disk (`full_disk` makes its message from what
    the system said), become one clear line on stderr and exit status 1, not a traceback."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return command(*args, **kwargs)
            except named as error:
                raise click.ClickException(str(error)) from error
            except OSError as error:
                reason = full_disk_reason(error)
                if reason is None:
                    raise
                raise click.ClickException(full_disk(reason)) from error

        return wrapper  # type: ignore[return-value]

    return decorate


def _index_disk_full(reason: str) -> str:
    where = f"the index {get_settings().index_dir}"
    return str(StorageFullError(where, reason, "run the command again"))


friendly_errors = errors_as_messages(
    CorpusError, IndexError_, DocumentNotFoundError, CollectionNotFoundError, full_disk=_index_disk_full
)
CREATES = "created if it does not exist"
MUST_EXIST = "it must exist"


# How torch's OpenMP threads wait between parallel regions, for `rag serve` (and the benchmark's
# floor, to measure the model as the server runs it). They spin, then sleep: spinning forever
# (OMP_WAIT_POLICY=ACTIVE), or 300k rounds by default, keeps both cores busy between requests and
# stalls the request's own threads; never spinning (PASSIVE) makes each of a forward pass's
# parallel regions wake sleeping threads: 19 ms for one question instead of 12 here. 10k rounds
# (~0.1 ms) keep them awake through a forward pass and asleep between requests
# (docs/performance.md).
OPENMP_ENVIRONMENT = {"GOMP_SPINCOUNT": "10000"}


@click.group()
def cli() -> None:
    """Retrieval Q&A over a corpus of articles, with exact citations.

    \b
    Examples:
      rag build                       # index the bundled corpus (a no-op when unchanged)
      rag ask "what projects could Larijani's visit accelerate?"
      rag serve --port 9000
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    use_ray_defaults()


def _engine(settings: Settings, collection: str = DEFAULT_COLLECTION, create: bool = False) -> Engine:
    """The engine of `collection`; one that does not exist is an error unless `create`."""
    return open_collection(settings, collection, create=create)


def _writing_engine(settings: Settings, collection: str, create: bool = False) -> Engine:
    """The engine of a command that writes, once what failed writes left behind is removed."""
    engine = _engine(settings, collection, create)
    remove_leftovers(engine.store)
    return engine


def _checked_collection(_: click.Context, __: click.Parameter, name: str) -> str:
    try:
        return checked_collection_name(name)
    except InvalidCollectionNameError as error:
        raise click.BadParameter(error.message) from error


def collection_option(writes: str) -> Callable[[F], F]:
    """`--collection NAME`; `writes` says what the command does to a collection not there yet."""
    return click.option(
        "--collection",
        default=DEFAULT_COLLECTION,
        show_default=True,
        callback=_checked_collection,
        help=f"The collection to use (docs/collections.md); {writes}.",
    )


def _merge_after_write(engine: Engine) -> None:
    """The merges a write asks for. The write is committed by then: a full disk only puts them
    off (to the next write, or `rag optimize`), so it is a warning, not a failed command."""
    try:
        engine.merge()
    except OSError as error:
        reason = full_disk_reason(error)
        if reason is None:
            raise
        click.echo(
            f"warning: the change is committed, but its segments were not merged: the disk holding "
            f"{engine.store.root} is full ({reason})",
            err=True,
        )


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--exact", is_flag=True, help="Make the index hold exactly these documents (remove all others)."
)
@click.option("--force", is_flag=True, help="Re-embed and rebuild everything, even when nothing changed.")
@click.option(
    "--cluster",
    "cluster_address",
    metavar="HOST:PORT",
    help="Embed on the Ray cluster whose head is here (default RAG_CLUSTER_ADDRESS; docs/scale.md).",
)
@click.option(
    "--shards",
    type=click.IntRange(min=1),
    help="Build a sharded index of this many shards (in RAG_INDEX_DIR, or the collection's "
    "directory), for `rag serve --cluster` (default RAG_SHARDS; none: an ordinary index).",
)
@collection_option(CREATES)
@friendly_errors
def build(
    paths: tuple[Path, ...],
    exact: bool,
    force: bool,
    cluster_address: str | None,
    shards: int | None,
    collection: str,
) -> None:
    """Index the documents in PATHS (default: RAG_CORPUS_DIRS, the bundled corpus).

    \b
    PATHS are .txt, .md (YAML front matter), .html or BEIR-style .jsonl files, or directories of
    them. A build applies what changed in these files since the last build: new and changed
    documents are indexed, documents whose file is gone are removed. Documents added over HTTP or
    with `rag add` are kept (and counted); --exact removes them too. Nothing changed: nothing done.
    With --cluster, the documents are embedded by RAG_CLUSTER_EMBED_ACTORS models on a Ray
    cluster, once the cluster answers and the index directory is the same writable directory on
    every node; the index written is the same ordinary index.
    \b
    Examples:
      rag build
      rag build corpus/articles my-articles/ extra.jsonl
      rag build --exact corpus/articles
      rag build --collection sport sport-articles/
      rag build --cluster 127.0.0.1:6379 corpus/articles
      rag build --cluster "$(rag cluster address)"
      RAG_INDEX_DIR=.rag/sharded rag build --shards 2 --cluster "$(rag cluster address)"
      RAG_INDEX_DIR=.rag/sharded RAG_COLLECTIONS_DIR=.rag/sharded-collections \
        rag build --shards 2 --collection sport sport-articles/
    """
    settings = get_settings()
    address = cluster_address or settings.cluster_address
    shard_count = shards or settings.shards
    if shard_count is not None:
        _build_sharded(
            settings, collection_dir(settings, collection), address, paths, shard_count, exact, force
        )
        return
    if address:
        _build_on_cluster(settings, address, paths, exact, force, collection)
        return
    engine = _writing_engine(settings, collection, create=True)
    _sync_and_report(engine, _documents(paths, settings), exact, force)


def _documents(paths: tuple[Path, ...], settings: Settings) -> list[Document]:
    documents = load_corpus(paths or settings.corpus_dirs)
    if not documents:
        raise click.ClickException(f"no documents found (supported: {', '.join(SUPPORTED_SUFFIXES)})")
    return documents


def _build_sharded(
    settings: Settings,
    root: Path,
    address: str | None,
    paths: tuple[Path, ...],
    shard_count: int,
    exact: bool,
    force: bool,
) -> None:
    """`rag build --shards N` into `root`, embedding here or, with an address, on the cluster
    (checked first)."""
    from service.sharded.building import build_sharded

    documents = _documents(paths, settings)
    if address is None:
        click.echo(
            build_sharded(
                settings, root, documents, shard_count, embedder_for(settings), exact=exact, force=force
            )
        )
        return
    embedder = _cluster_embedder(settings)
    from index.cluster.connect import check_storage, connected

    with connected(address):
        check_storage(root)
        click.echo(build_sharded(settings, root, documents, shard_count, embedder, exact=exact, force=force))
    _report_cluster_embedding(embedder, address, settings)


def _cluster_embedder(settings: Settings) -> ClusterEmbedder:
    """The embedder of a cluster build: the model's vectors, computed by the cluster's actors."""
    if settings.embedder != EmbedderKind.SENTENCE_TRANSFORMERS:
        raise click.UsageError("a cluster build embeds with the model: unset RAG_EMBEDDER=hashing")
    from index.cluster.embedding import ClusterEmbedder

    return ClusterEmbedder(settings.model, settings.index_settings(), settings.cluster_embed_actors)


def _build_on_cluster(
    settings: Settings, address: str, paths: tuple[Path, ...], exact: bool, force: bool, collection: str
) -> None:
    """`rag build --cluster`: the cluster and the index directory are checked before anything is
    embedded or written (index/cluster); then an ordinary build whose embedder is the cluster."""
    from index.cluster.connect import check_storage, connected

    documents = _documents(paths, settings)
    embedder = _cluster_embedder(settings)
    with connected(address):
        check_storage(collection_dir(settings, collection))
        engine = open_collection(settings, collection, create=True, embedder=embedder)
        remove_leftovers(engine.store)
        _sync_and_report(engine, documents, exact, force)
    _report_cluster_embedding(embedder, address, settings)


def _report_cluster_embedding(embedder: ClusterEmbedder, address: str, settings: Settings) -> None:
    if embedder.embedded:
        click.echo(
            f"embedded on the cluster at {address}: {embedder.embedded} text(s) by "
            f"{settings.cluster_embed_actors} actor(s) on {len(embedder.nodes)} node(s); at most "
            f"{embedder.peak_held} vector(s) held here at once"
        )


def _sync_and_report(engine: Engine, documents: list[Document], exact: bool, force: bool) -> None:
    result = engine.sync(documents, exact=exact, force=force, show_progress=True)
    reader = result.reader
    others = f"; {len(result.kept)} kept as other writers left them" if result.kept else ""
    if result.reindexed:
        others += f"; every document re-indexed: {result.reindexed}"
    if not result.changed:
        click.echo(
            f"index {reader.version} holds the files' {len(documents)} documents as built "
            f"({reader.document_count} documents in all{others}); nothing to do"
        )
        return
    _merge_after_write(engine)
    click.echo(
        f"built index {engine.retriever.version}: {reader.document_count} documents, {reader.chunk_count} "
        f"chunks (from files: added {len(result.added)}, replaced {len(result.replaced)}, removed "
        f"{len(result.removed)}{others}) in {engine.store.root}"
    )


@cli.command()
@click.option("--host", help="Interface to listen on (default RAG_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default RAG_PORT, 8000).")
@click.option(
    "--cluster",
    "cluster_address",
    metavar="HOST:PORT",
    help="Deploy the sharded index in RAG_INDEX_DIR on this Ray cluster with Ray Serve, then exit "
    "(default RAG_CLUSTER_ADDRESS; docs/scale.md).",
)
@friendly_errors
def serve(host: str | None, port: int | None, cluster_address: str | None) -> None:
    """Serve the HTTP API (docs at /docs, OpenAPI at /openapi.json).

    \b
    The index is loaded before the server starts listening: a missing or damaged index stops
    here with a message, never serves as an empty corpus.
    With --cluster, RAG_INDEX_DIR holds a sharded index: each shard, the question encoder and the
    API are Ray Serve deployments on the cluster, which keep serving after this command exits.
    \b
    Examples:
      rag serve --port 9000
      rag serve --cluster 127.0.0.1:6379
    """
    import uvicorn

    from service.app import create_app

    for name, value in OPENMP_ENVIRONMENT.items():  # before the model loads torch
        os.environ.setdefault(name, value)
    settings = get_settings()
    # The app sees the host it really listens on: writes without admin keys need loopback.
    settings = settings.model_copy(update={"host": host or settings.host, "port": port or settings.port})
    address = cluster_address or settings.cluster_address
    if address:
        from service.sharded.deployments import deploy

        try:
            url = deploy(settings, address)
        except ConnectionError as error:
            raise click.ClickException(f"no Ray cluster answers at {address}: {error}") from error
        click.echo(f"serving the sharded index {settings.index_dir} at {url}")
        return
    engine = _engine(settings)
    _ = engine.retriever
    uvicorn.run(
        create_app(settings, engine=engine),
        host=settings.host,
        port=settings.port,
        access_log=not settings.request_log,  # the request log (service/request_log.py) replaces it
    )


@cli.command()
@click.argument("question")
@click.option("-k", "--k", "k", default=DEFAULT_K, show_default=True, help="How many passages.")
@click.option(
    "--mode", type=click.Choice([mode.value for mode in Mode]), default=DEFAULT_MODE.value, show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON response instead.")
@click.option(
    "--filter",
    "filter_json",
    metavar="JSON",
    help="Answer only from the documents this filter matches: the API's `filter` (must, should, must_not).",
)
@click.option("--source", multiple=True, help="Only this publication (repeatable: any of them).")
@click.option("--author", multiple=True, help="Only this author (repeatable: any of them).")
@click.option("--document-id", multiple=True, help="Only this document (repeatable: any of them).")
@click.option(
    "--published-after", metavar="DATE", help="Only documents published on or after DATE (ISO 8601)."
)
@click.option(
    "--published-before", metavar="DATE", help="Only documents published on or before DATE (ISO 8601)."
)
@click.option(
    "--no-dates-from-question",
    "ignore_question_dates",
    is_flag=True,
    help="Do not keep to the time range the question states ('in November 2025').",
)
@click.option("--as-of", metavar="DATE", help="Read 'this year', 'last month' as of DATE (default: today).")
@collection_option(MUST_EXIST)
@friendly_errors
def ask(
    question: str,
    k: int,
    mode: str,
    as_json: bool,
    filter_json: str | None,
    ignore_question_dates: bool,
    as_of: str | None,
    collection: str,
    **shortcuts: Any,
) -> None:
    """Ask QUESTION and print the best passages with citations.

    \b
    --filter takes the HTTP API's filter; --source, --author, --document-id, --published-after and
    --published-before are its common conditions (as GET /search's parameters). All given must
    hold. A question that states a time range is searched within it when documents have dates.
    \b
    Examples:
      rag ask "what projects could Larijani's visit accelerate?"
      rag ask "who is Syed Ali Abbas?" -k 3 --mode bm25 --json
      rag ask "security talks" --source Dawn --source Nournews --published-after 2025-11-01
      rag ask "security talks" --filter '{"must_not": [{"key": "author", "match": {"value": "Ahmed Ali"}}]}'
      rag ask "what was agreed this month?" --as-of 2025-11-20
      rag ask "the 2025 agreement" --no-dates-from-question
    """
    settings = get_settings()
    try:
        query = checked_query(question, settings.max_query_chars)
        k = checked_k(k, settings.max_k)
    except InvalidQueryError as error:
        raise click.UsageError(error.message) from error
    search_filter = _ask_filter(filter_json, shortcuts)
    try:
        dates = QuestionDates(dates_from_question=not ignore_question_dates, as_of=as_of)
    except ValidationError as error:
        raise click.BadParameter(validation_message(error), param_hint="--as-of") from error
    outcome = _engine(settings, collection).search(
        query, k, Mode(mode), 0, search_filter, dates.question_as_of()
    )
    if as_json:
        click.echo(search_response(outcome).model_dump_json(indent=2))
        return
    click.echo(render_outcome(outcome, color=sys.stdout.isatty()))


def _ask_filter(filter_json: str | None, shortcuts: dict[str, tuple[str, ...] | str | None]) -> Filter | None:
    """`--filter` and the shortcut options together, checked by the API's own schemas; a broken
    one is a usage error (exit 2) before anything is searched."""
    try:
        given = None if filter_json is None else SearchFilter.model_validate_json(filter_json).to_filter()
    except ValidationError as error:
        raise click.BadParameter(validation_message(error), param_hint="--filter") from error
    try:
        common = QueryFilter.model_validate({name: value for name, value in shortcuts.items() if value})
    except ValidationError as error:
        message = validation_message(error)
        for name in QueryFilter.model_fields:  # the options' names, not the API's
            message = message.replace(name, "--" + name.replace("_", "-"))
        raise click.UsageError(message) from error
    return common.query_filter() if given is None else given.and_(common.query_filter())


@cli.command()
@friendly_errors
def mcp() -> None:
    """Serve the MCP tools `search` and `fetch` over stdio, for desktop MCP clients (every
    collection: the tools take `collection`).

    \b
    The index must exist (`rag build`); it is loaded before the first message, so a missing
    index fails here with a clear message instead of inside the client. Logs go to stderr.
    \b
    Example client configuration (Claude Desktop and similar):
      {"mcpServers": {"news": {"command": "/path/to/.venv/bin/rag", "args": ["mcp"]}}}
    """
    from service.mcp_server import build_mcp_server

    settings = get_settings()
    engine = _engine(settings)
    _ = engine.retriever
    collections = Collections(engine, settings)
    build_mcp_server(collections.get, settings, check_keys=False).run("stdio")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@collection_option(CREATES)
@friendly_errors
def add(paths: tuple[Path, ...], collection: str) -> None:
    """Add or replace the documents in PATHS in the index: .txt, .md, .html, .htm and .jsonl
    files, or directories of them (read as `rag build` reads them).

    \b
    Only new or changed text is embedded; the same content again changes nothing. Documents are
    committed in batches, with a progress bar on a terminal; a file that cannot be read is
    refused and listed with its reason at the end (exit status 1), the others are added. A running
    `rag serve` on the same RAG_INDEX_DIR picks the change up on its next request.
    \b
    Examples:
      rag add article.md page.html
      rag add more-articles.jsonl new-articles/
    """
    settings = get_settings()
    read = bulk_add.read_files(paths)
    if not read.documents and not read.refused:
        raise click.ClickException(f"no documents found (supported: {', '.join(SUPPORTED_SUFFIXES)})")
    if read.documents:  # committed in batches, with a progress bar on a terminal
        engine = _writing_engine(settings, collection, create=True)
        added = bulk_add.add_in_batches(engine, read.documents)
        click.echo(bulk_add.summary_line(added, f"{len(read.documents)} document(s) read"))
        _merge_after_write(engine)
    if read.refused:
        for line in bulk_add.refused_lines(read):
            click.echo(line, err=True)
        raise click.ClickException(f"{len(read.refused)} file(s) refused (listed above)")


@cli.command()
@click.argument("document_ids", nargs=-1, required=True)
@collection_option(MUST_EXIST)
@friendly_errors
def remove(document_ids: tuple[str, ...], collection: str) -> None:
    """Remove the documents DOCUMENT_IDS from the index (all or none: an unknown id changes nothing).

    \b
    Example:
      rag remove nournews-larijani-visit
    """
    engine = _writing_engine(get_settings(), collection)
    _report_update(engine.remove(list(document_ids)), f"{len(document_ids)} id(s) given")
    _merge_after_write(engine)


@cli.command()
@collection_option(MUST_EXIST)
@friendly_errors
def optimize(collection: str) -> None:
    """Merge every segment into one, dropping deleted documents (after bulk loads).

    \b
    Queries served meanwhile (by `rag serve` on the same index) are not held up.
    Example:
      rag optimize
    """
    engine = _writing_engine(get_settings(), collection)
    outcome = engine.merge(force=True)
    reader = outcome.reader or engine.retriever.reader
    if not outcome.results:
        click.echo(f"index {reader.version} is one segment without deleted documents already")
        return
    merged = sum(len(result.merged) for result in outcome.results)
    click.echo(f"index {reader.version}: {merged} segment(s) merged into {len(reader.segments)}")


@cli.command()
@click.argument("name", required=False)
@click.option("--list", "list_them", is_flag=True, help="List the snapshots instead.")
@collection_option(MUST_EXIST)
@friendly_errors
def snapshot(name: str | None, list_them: bool, collection: str) -> None:
    """Keep the live index as snapshot NAME (hard links: nearly free), or --list them.

    \b
    Examples:
      rag snapshot before-import
      rag snapshot --list
      rag restore before-import
    """
    settings = get_settings()
    if list_them:
        intact, damaged = _engine(settings, collection).snapshots()
        for kept_name, commit in intact:
            click.echo(f"{kept_name}\t{commit.version}\t{commit.documents} documents\t{commit.created_at}")
        for damaged_name, problem in damaged:
            click.echo(f"{damaged_name}\tDAMAGED\t{problem}")
        return
    if not name:
        raise click.UsageError("give a NAME, or --list")
    engine = _writing_engine(settings, collection)
    commit = _snapshot_errors(lambda: engine.snapshot(name))
    click.echo(f"snapshot {name!r} keeps index {commit.version} ({commit.documents} documents)")


@cli.command()
@click.argument("name", required=False)
@click.option(
    "--last-good",
    is_flag=True,
    help="Go back to the newest intact commit point, if the live one is damaged.",
)
@collection_option(MUST_EXIST)
@friendly_errors
def restore(name: str | None, last_good: bool, collection: str) -> None:
    """Make snapshot NAME the live index again, or (--last-good) the newest intact commit point.

    \b
    Either way it is a new commit: versions never go backwards. Every file of the snapshot is
    checked first; a damaged one is refused, naming the file, and the index is left as it was.
    --last-good checks the live commit; if it is intact, nothing changes. If it is damaged, the
    newest commit point whose files all pass their checks (commits/ first, then snapshots/)
    becomes live, and each document lost is printed: `lost ID` (held by the damaged
    commit, not by the recovered one), `back ID` (deleted or replaced since, held again), `lost
    N documents of segment S` (a segment whose ids cannot be read).
    \b
    Examples:
      rag restore before-import
      rag restore --last-good
    """
    if last_good and name is None:
        _report_recovery(_engine(get_settings(), collection).recover())
    elif name is not None and not last_good:
        live = _snapshot_errors(lambda: _writing_engine(get_settings(), collection).restore(name)).live
        click.echo(f"restored snapshot {name!r}: index {live.version} ({live.documents} documents)")
    else:
        raise click.UsageError("give a snapshot NAME, or --last-good")


def _report_recovery(recovery: Recovery) -> None:
    plan, version = recovery.plan, recovery.reader.version
    if plan.damage is None:
        click.echo(f"index {version} is intact: nothing lost, nothing changed")
        return
    loss = plan.loss
    lines = [f"lost {document_id}" for document_id in loss.missing]
    lines += [f"back {document_id}" for document_id in loss.returned]
    lines += [f"lost {count} documents of segment {segment}" for segment, count in loss.unreadable]
    if loss.unknown:
        lines.append("unknown: which commit was live cannot be read, so what it held is unknown")
    for line in lines or ["nothing lost"]:
        click.echo(line)
    click.echo(f"index {version}, from {plan.source} (the live commit was damaged: {plan.damage})")


def _snapshot_errors(action: Callable[[], Done]) -> Done:
    try:
        return action()
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        raise click.ClickException(str(error)) from error


def _report_update(result: WriteResult, what: str) -> None:
    reader = result.reader
    if not result.changed:
        click.echo(f"index {reader.version} unchanged ({what}, all already indexed as given)")
        return
    click.echo(
        f"index {reader.version}: added {len(result.added)}, replaced {len(result.replaced)}, "
        f"removed {len(result.removed)}; {reader.document_count} documents ({what})"
    )


def render_outcome(outcome: SearchOutcome, color: bool = False) -> str:
    lines = [f"Q: {outcome.query}   [{outcome.mode}, index {outcome.index_version}]"]
    applied = applied_filters(outcome)
    if applied.filter is not None:
        lines.append(f"Filter: {json.dumps(applied.filter)}")
    if applied.filter_from_question is not None:
        lines.append(f"Filter from the question: {json.dumps(applied.filter_from_question)}")
    if not outcome.answerable:
        lines.append("No confident answer in the corpus (the closest passages follow).")
    for hit in outcome.hits:
        document = hit.document
        byline = ", ".join(part for part in (document.source, document.author) if part)
        lines.append("")
        lines.append(f"[{hit.rank}] {document.title or document.id} ({byline})  score {hit.score:.4f}")
        answer = (
            click.style(hit.answer.text, bold=True, underline=True) if color else f">>{hit.answer.text}<<"
        )
        if hit.answer.field != "text":  # the answer is a field of the document's metadata
            lines.append(
                f"    {document.id} chars {hit.chunk.start}-{hit.chunk.end}; answer: its {hit.answer.field}"
            )
            lines.append(f"    {hit.answer.field}: {answer}")
            continue
        lines.append(
            f"    {document.id} chars {hit.chunk.start}-{hit.chunk.end}; answer {hit.answer.start}-{hit.answer.end}"
        )
        before = hit.chunk.text[: hit.answer.start - hit.chunk.start]
        after = hit.chunk.text[hit.answer.end - hit.chunk.start :]
        lines.append("    " + (before + answer + after).replace("\n", "\n    "))
    return "\n".join(lines)


cli.add_command(cluster)
