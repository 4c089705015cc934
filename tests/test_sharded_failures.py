"""The sharded engine's failure handling without Ray (`service.sharded.engine.RemoteFanOut`,
`attempted`): fake responses raise fake "replica died" and "deployment unavailable" errors, and a
real `TimeoutError`, sorted by a `FailureKinds` of the fakes, as Ray's are in the ingress; and the
503 body the app answers for `ShardUnavailableError`."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.errors import install_error_handlers
from service.sharded.engine import SEARCH_ATTEMPTS, PendingCall, RemoteFanOut, attempted, question_vector
from service.sharded.failures import (
    EncoderUnavailableError,
    FailureKinds,
    ReplicaLostError,
    ShardUnavailableError,
)


class Died(Exception):
    """Stands for Ray's ActorDiedError."""


class Gone(Exception):
    """Stands for Serve's DeploymentUnavailableError."""


KINDS = FailureKinds(replica_lost=(Died,), shard_down=(Gone,))


class Response:
    def __init__(self, answer: Any = None, error: BaseException | None = None) -> None:
        self.answer, self.error, self.cancelled = answer, error, False

    def result(self, timeout_s: float) -> Any:
        if self.error is not None:
            raise self.error
        return self.answer

    def cancel(self) -> None:
        self.cancelled = True


def fan(*responses: Response) -> list[Any]:
    calls = [lambda shard=shard, r=r: PendingCall(shard, r) for shard, r in enumerate(responses)]
    return RemoteFanOut(KINDS, timeout_s=5.0)(calls)


def test_answers_come_back_in_shard_order() -> None:
    assert fan(Response("a"), Response("b")) == ["a", "b"]


def test_a_replica_that_died_is_a_replica_lost_naming_the_shard() -> None:
    with pytest.raises(ReplicaLostError) as raised:
        fan(Response("a"), Response(error=Died()))
    assert raised.value.shard == 1


def test_a_timeout_or_an_unavailable_deployment_names_every_such_shard() -> None:
    late = Response(error=TimeoutError())
    with pytest.raises(ShardUnavailableError) as raised:
        fan(late, Response("b"), Response(error=Gone()), Response(error=Died()))
    assert raised.value.shards == (0, 2)
    assert "shard-0, shard-2 unavailable" in str(raised.value)
    assert late.cancelled


class Hung(Response):
    """A shard that does not answer: waited for, it takes the whole time given, then times out."""

    def __init__(self) -> None:
        super().__init__()
        self.waited: list[float] = []

    def result(self, timeout_s: float) -> Any:
        self.waited.append(timeout_s)
        raise TimeoutError


class ReadWhenWaited(Response):
    """An answer that has arrived but, as a gRPC call's, is read only while it is waited for."""

    def result(self, timeout_s: float) -> Any:
        if timeout_s <= 0:
            raise TimeoutError
        return self.answer


def test_an_answer_that_came_while_a_hung_shard_was_waited_for_is_still_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter([0.0, 0.0, 10.0])  # the step starts; the hung shard is waited for; then the next
    monkeypatch.setattr("service.sharded.engine.time.monotonic", lambda: next(clock))
    hung = Hung()
    calls = [lambda: PendingCall(0, hung), lambda: PendingCall(1, ReadWhenWaited("b"))]
    with pytest.raises(ShardUnavailableError) as raised:
        RemoteFanOut(KINDS, timeout_s=5.0)(calls)
    assert raised.value.shards == (0,)
    assert hung.waited == [5.0]


def test_other_errors_pass_through() -> None:
    with pytest.raises(ValueError, match="bad"):
        fan(Response(error=ValueError("bad")))


def test_a_lost_replica_makes_the_search_start_again() -> None:
    tries: list[int] = []

    def answer() -> str:
        tries.append(1)
        if len(tries) == 1:
            raise ReplicaLostError(1, Died())
        return "answered"

    assert attempted(answer) == "answered"
    assert len(tries) == 2


def test_replicas_lost_on_every_attempt_make_the_shard_unavailable() -> None:
    tries: list[int] = []

    def answer() -> str:
        tries.append(1)
        raise ReplicaLostError(3, Died())

    with pytest.raises(ShardUnavailableError) as raised:
        attempted(answer)
    assert raised.value.shards == (3,)
    assert len(tries) == SEARCH_ATTEMPTS


def test_shard_unavailable_is_a_503_with_the_json_error_body() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/search")
    def search() -> None:
        raise ShardUnavailableError([1], "no replica answered within 3 s")

    response = TestClient(app).get("/search")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "shard_unavailable"
    assert error["message"].startswith("shard-1 unavailable: no replica answered within 3 s")
    assert error["details"] == [
        {"field": "shard", "message": "shard-1 did not answer", "type": "shard_unavailable"}
    ]


class Encoder:
    """A fake encoder deployment handle: `encode.remote(query)` answers these responses in turn."""

    def __init__(self, *responses: Response) -> None:
        self.responses, self.asked = list(responses), 0
        self.encode = self

    def remote(self, query: str) -> Response:
        self.asked += 1
        return self.responses.pop(0)


def test_the_encoder_is_asked_again_when_its_replica_is_lost() -> None:
    encoder = Encoder(Response(error=Died()), Response([0.6, 0.8]))
    assert question_vector(encoder, "q", KINDS, timeout_s=5.0).tolist() == pytest.approx([0.6, 0.8])
    assert encoder.asked == 2


@pytest.mark.parametrize(
    "responses",
    [
        [Response(error=TimeoutError())],
        [Response(error=Gone())],
        [Response(error=Died()) for _ in range(SEARCH_ATTEMPTS)],
    ],
    ids=["timeout", "no-replica", "lost-every-time"],
)
def test_an_encoder_that_does_not_answer_is_a_503(responses: list[Response]) -> None:
    with pytest.raises(EncoderUnavailableError) as raised:
        question_vector(Encoder(*responses), "q", KINDS, timeout_s=5.0)
    app = FastAPI()
    install_error_handlers(app)
    error = raised.value

    @app.get("/search")
    def search() -> None:
        raise error

    response = TestClient(app).get("/search")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "encoder_unavailable"
    assert "question encoder is unavailable" in response.json()["error"]["message"]
