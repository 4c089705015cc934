"""The ports a local cluster's nodes are given (`service.cluster.local`): never the same twice,
even when the kernel hands a just-probed port out again before Ray binds it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from service.cluster import local


class ProbeSocket:
    """A socket stand-in whose bind to port 0 lands on the next of `ports`."""

    ports: Iterator[int]

    def __enter__(self) -> ProbeSocket:
        return self

    def __exit__(self, *_: Any) -> None:
        return None

    def bind(self, address: tuple[str, int]) -> None:
        self.port = next(ProbeSocket.ports)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def test_a_port_given_once_is_never_given_again(monkeypatch: pytest.MonkeyPatch) -> None:
    ProbeSocket.ports = iter([41001, 41001, 41002, 41001, 41002, 41003])
    monkeypatch.setattr("service.cluster.local.socket.socket", ProbeSocket)
    monkeypatch.setattr(local, "_HANDED_OUT", set())
    assert [local._free_port() for _ in range(3)] == [41001, 41002, 41003]


def test_the_ports_are_free_loopback_ports() -> None:
    given = [local._free_port() for _ in range(20)]
    assert len(set(given)) == 20 and all(1024 < port < 65536 for port in given)
