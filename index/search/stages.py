"""Per-stage timing of a search: `stage(name)` marks where a stage runs, whoever measures it.

In scope: the stage names (`STAGES`), the `stage` context manager the search code wraps each
stage in, and `observing_stages`, which installs a `StageHook` for the current context (a request,
in the service; contextvars follow `await` and the worker threads Starlette hands work to). A hook
is any callable returning a context manager for a stage name: the service's records a histogram
sample and, with tracing on, a span.

Without a hook `stage` costs one context-variable read and returns a shared no-op context, so
the index layer stays free of metrics and tracing libraries and of any setting. Out of scope:
what is measured and where it goes (service/observability/).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar

ENCODE, DENSE, BM25, FUSION, ANSWERS = "encode", "dense", "bm25", "fusion", "answers"
# encode: the question's vector (waiting for its batch included); dense: vector candidates; bm25:
# lexical candidates; fusion: the ranking made of them; answers: near-duplicates, answer
# sentences and the answerability verdict.
STAGES = (ENCODE, DENSE, BM25, FUSION, ANSWERS)

StageHook = Callable[[str], AbstractContextManager[object]]

_HOOK: ContextVar[StageHook | None] = ContextVar("rag_stage_hook", default=None)
_NOTHING: AbstractContextManager[object] = nullcontext()


def stage(name: str) -> AbstractContextManager[object]:
    """The context of stage `name` (one of `STAGES`): the current hook's, else a no-op."""
    hook = _HOOK.get()
    return _NOTHING if hook is None else hook(name)


@contextmanager
def observing_stages(hook: StageHook) -> Iterator[None]:
    """Within the block (and what it awaits or hands to worker threads), stages go to `hook`."""
    token = _HOOK.set(hook)
    try:
        yield
    finally:
        _HOOK.reset(token)
