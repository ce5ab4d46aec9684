"""Fixtures: one IdentSphere for the suite, more where a test needs other settings, and each of the SDK's
sync/async pairs under one interface so that a test body covers both."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Callable, cast

import pytest

from identsphere import AsyncClient, AsyncVerifier, Client, Verifier
from support.blocking import Blocking, LoopThread
from support.server import Server

#: Makes a verifier for a server, with options: `Verifier`, or `AsyncVerifier` driven through `Blocking`.
MakeVerifier = Callable[..., Verifier]


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """The suite's IdentSphere. No refresh grace window: a spent refresh token is reuse at once."""
    started = Server({"IDENTSPHERE_REFRESH_REUSE_GRACE": "0"})
    yield started
    started.close()


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    """Starts an IdentSphere of the test's own (`start_server({"IDENTSPHERE_…": "…"})`), closed after it."""
    started: list[Server] = []

    def start(env: Mapping[str, str] = {}, **options: Any) -> Server:
        started.append(Server(env, **options))
        return started[-1]

    yield start
    for each in started:
        each.close()


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    running = LoopThread()
    yield running
    running.close()


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return cast(str, request.param)


@pytest.fixture
def make_client(flavour: str, loop: LoopThread) -> Iterator[Callable[[str], Client]]:
    """`Client(base_url)`, or an `AsyncClient` called through `Blocking`."""
    made: list[Any] = []

    def make(base_url: str) -> Client:
        made.append(Client(base_url) if flavour == "sync" else Blocking(AsyncClient(base_url), loop))
        return cast(Client, made[-1])

    yield make
    for each in made:
        each.close() if flavour == "sync" else each.aclose()


@pytest.fixture
def client(make_client: Callable[[str], Client], server: Server) -> Client:
    return make_client(server.base_url)


@pytest.fixture
def make_verifier(flavour: str, loop: LoopThread) -> Iterator[MakeVerifier]:
    """`Verifier(base_url, **options)`, or an `AsyncVerifier` called through `Blocking`."""
    made: list[Any] = []

    def make(base_url: str, **options: Any) -> Verifier:
        kind = Verifier if flavour == "sync" else AsyncVerifier
        verifier = kind(base_url, **options)
        made.append(verifier if flavour == "sync" else Blocking(verifier, loop))
        return cast(Verifier, made[-1])

    yield make
    for each in made:
        each.close() if flavour == "sync" else each.aclose()
