"""The MCP server (official `mcp` SDK): `search` and `fetch` tools over the shared `Engine`.

Served two ways: mounted into the FastAPI app at `/mcp` (streamable HTTP, stateless, see
`mount_streamable_http`) and over stdio by `rag mcp` for desktop clients. Tool results are
structured content (the pydantic models below) with the same JSON as text for older clients.
Bad arguments become tool errors with a message the model can act on. Both tools take an
optional `collection` (default `default`); over HTTP it must be one the request's API key may use
(service/auth.py), and an unknown or badly named collection is a tool error naming it.

Out of scope: MCP resources and prompts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from corpus import Document
from index.errors import IndexError_
from index.search.modes import Mode
from index.search.options import DEFAULT_K, DEFAULT_MODE, MAX_CONTEXT
from service.auth import check_read, key_from_headers
from service.collection_names import COLLECTION_NAME_RULE, DEFAULT_COLLECTION, InvalidCollectionNameError
from service.collections import CollectionNotFoundError
from service.config import Settings
from service.engine import DocumentNotFoundError, Engine
from service.errors import ApiError, error_response
from service.filter_schema import QuestionDates, SearchFilter, validation_message
from service.llm_formats import citation_line, cited_passage, note_for
from service.llm_schemas import FetchToolResult, SearchToolResult
from service.queries import InvalidQueryError, checked_context, checked_k, checked_query
from service.results import applied_filters, citation_fields
from service.schemas import FILTER_DESCRIPTION, MODE_DESCRIPTION

INSTRUCTIONS = (
    "Retrieval over a corpus of news articles. Call `search` with the user's question to get the "
    "passages that answer it, each with a citation; quote and cite them, and say the corpus does "
    "not answer when `answerable` is false. Call `fetch` with a passage or document id to read more."
)
SEARCH_DESCRIPTION = (
    "Search the news-article corpus for the passages that best answer a question. Returns up to "
    "`k` passages, best first, each with its text, the single sentence that best answers the "
    "question (`answer`), a ready-made `citation` line (title, publication, author, date, character "
    "offsets) and a `passage_id`. `answerable` is false when no passage is a confident match: then "
    "tell the user the corpus does not answer the question instead of guessing. Use `context` "
    f"(1-{MAX_CONTEXT}) to widen each passage by neighbouring text when it is cut short. Use "
    "`filter` to answer only from some documents (a publication, an author, a date range), e.g. "
    '`{"must": [{"key": "source", "match": {"value": "Dawn"}}]}`; a '
    "question that states a time range ('in November 2025') is searched within it when the documents "
    "have dates. The result's `filter` and `filter_from_question` say what was applied."
)
FETCH_DESCRIPTION = (
    "Read a whole document or one exact passage, with its citation. `id` is a document id (e.g. "
    "`nournews-larijani-visit`) or a passage id from `search` (`<document id>#<start>-<end>`)."
)
K_DESCRIPTION = f"How many passages, 1 to the server's RAG_MAX_K; {DEFAULT_K} by default."
CONTEXT_DESCRIPTION = f"Neighbouring chunks to add on each side of each passage, 0 to {MAX_CONTEXT}."
COLLECTION_DESCRIPTION = (
    "The collection to use (docs/collections.md); `default` unless the user names another. "
    f"{COLLECTION_NAME_RULE[0].upper()}{COLLECTION_NAME_RULE[1:]}."
)
DATES_FROM_QUESTION_DESCRIPTION = QuestionDates.model_fields["dates_from_question"].description
AS_OF_DESCRIPTION = QuestionDates.model_fields["as_of"].description
_PASSAGE_ID = re.compile(r"^(?P<document>[^#]+)#(?P<start>\d+)-(?P<end>\d+)$")


def fetch_result(document: Document, requested_id: str, start: int, end: int) -> FetchToolResult:
    return FetchToolResult(
        **citation_fields(document),
        id=requested_id,
        start=start,
        end=end,
        text=document.text[start:end],
        citation=citation_line(document, start, end),
    )


def build_mcp_server(
    engine_of: Callable[[str], Engine], settings: Settings, check_keys: bool = True
) -> MCPServer:
    """An MCP server whose tools call the engine `engine_of(collection)` returns at call time.
    With `check_keys` (over HTTP), a tool call's collection must be one its API key may use;
    over stdio there are no keys: the client runs the server itself."""

    def collection_engine(collection: str, context: Context) -> Engine:
        """The collection's engine, or a tool error naming what is wrong with `collection`."""
        try:
            if check_keys:
                check_read(settings, key_from_headers(context.headers or {}), collection)
            return engine_of(collection)
        except ApiError as error:
            raise ToolError(error.message) from error
        except (CollectionNotFoundError, InvalidCollectionNameError) as error:
            raise ToolError(str(error)) from error

    server = MCPServer("rag-service", instructions=INSTRUCTIONS, version="0.1.0", log_level="WARNING")
    read_only = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)

    @server.tool(
        name="search", title="Search news passages", description=SEARCH_DESCRIPTION, annotations=read_only
    )
    def search(
        ctx: Context,  # filled by the SDK, not in the input schema: its HTTP headers carry the key
        question: Annotated[str, Field(description="The question, in natural language.")],
        k: Annotated[int, Field(description=K_DESCRIPTION)] = DEFAULT_K,
        mode: Annotated[Mode, Field(description=MODE_DESCRIPTION)] = DEFAULT_MODE,
        context: Annotated[int, Field(description=CONTEXT_DESCRIPTION)] = 0,
        filter: Annotated[SearchFilter | None, Field(description=FILTER_DESCRIPTION)] = None,
        dates_from_question: Annotated[bool, Field(description=DATES_FROM_QUESTION_DESCRIPTION)] = True,
        as_of: Annotated[str | None, Field(description=AS_OF_DESCRIPTION)] = None,
        collection: Annotated[str, Field(description=COLLECTION_DESCRIPTION)] = DEFAULT_COLLECTION,
    ) -> SearchToolResult:
        engine = collection_engine(collection, ctx)
        try:
            query = checked_query(question, settings.max_query_chars)
            dates = QuestionDates(dates_from_question=dates_from_question, as_of=as_of)
            outcome = engine.search(
                query,
                checked_k(k, settings.max_k),
                mode,
                checked_context(context),
                None if filter is None else filter.to_filter(),
                dates.question_as_of(),
            )
        except ValidationError as error:
            raise ToolError(validation_message(error)) from error
        except (InvalidQueryError, IndexError_) as error:
            raise ToolError(str(error)) from error
        return SearchToolResult(
            **applied_filters(outcome).model_dump(),
            query=outcome.query,
            answerable=outcome.answerable,
            confidence=outcome.confidence,
            note=note_for(outcome),
            index_version=outcome.index_version,
            passages=[cited_passage(hit) for hit in outcome.hits],
        )

    @server.tool(
        name="fetch", title="Read a document or passage", description=FETCH_DESCRIPTION, annotations=read_only
    )
    def fetch(
        ctx: Context,
        id: Annotated[
            str, Field(description="A document id, or a passage id `<document id>#<start>-<end>`.")
        ],
        collection: Annotated[str, Field(description=COLLECTION_DESCRIPTION)] = DEFAULT_COLLECTION,
    ) -> FetchToolResult:
        engine = collection_engine(collection, ctx)
        match = _PASSAGE_ID.match(id.strip())
        document_id = match["document"] if match else id.strip()
        try:
            document = engine.document(document_id)
        except DocumentNotFoundError as error:
            raise ToolError(f"{error}; use a document id or passage id returned by `search`") from error
        except IndexError_ as error:
            raise ToolError(str(error)) from error
        if match is None:
            return fetch_result(document, id, 0, len(document.text))
        start, end = int(match["start"]), int(match["end"])
        if end > len(document.text):
            raise ToolError(
                f"offsets {start}-{end} are outside document {document.id!r} (length {len(document.text)})"
            )
        if end <= start:
            raise ToolError(f"passage id {id!r} selects no text: its end must be after its start")
        return fetch_result(document, id, start, end)

    return server


def transport_security(settings: Settings) -> TransportSecuritySettings | None:
    """DNS-rebinding protection when bound to loopback (the SDK's default), plus the CORS origins."""
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        return None
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=[
            "http://127.0.0.1:*",
            "http://localhost:*",
            "http://[::1]:*",
            *settings.cors_origins,
        ],
    )


def streamable_http_route(server: MCPServer, settings: Settings, path: str = "/mcp") -> Route:
    """The `/mcp` route to add to another app. Its session manager must run in that app's lifespan
    (`async with server.session_manager.run()`): the SDK's own sub-app lifespan would not run."""
    sub_app = server.streamable_http_app(
        streamable_http_path=path,
        stateless_http=True,  # tools are plain request/response: no per-client state to keep
        json_response=True,
        transport_security=transport_security(settings),
        host=settings.host,
    )
    route = next(r for r in sub_app.routes if isinstance(r, Route) and r.path == path)
    route.app = _without_get_streams(route.app)
    return route


def _without_get_streams(app: ASGIApp) -> ASGIApp:
    """A stateless server has nothing to push to a client, so the SDK's GET stream would stay open
    and silent forever; GET is answered 405 with `Allow: POST` instead, as the MCP transport
    specification lets a server without such streams do."""

    async def post_only(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "GET":
            response = error_response(
                405,
                "method_not_allowed",
                "this MCP server is stateless and never streams: send JSON-RPC messages with POST",
            )
            response.headers["Allow"] = "POST"
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    return post_only
