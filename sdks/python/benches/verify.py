"""What verifying an access token costs, in µs per call (p50 and p99): PyJWT alone with the same key and
token, then the SDK's verifiers and middleware, all in process (no network in the numbers). A benchmark, not
a test: it starts a real IdentSphere (tests/support) for a genuine token and revocation feed.

    IDENTSPHERE_BIN=/path/to/identsphere python benches/verify.py [iterations]
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE.parent / "tests")]

import jwt  # noqa: E402

from identsphere import AsyncVerifier, Client, Verifier  # noqa: E402
from identsphere.asgi import IdentSphereMiddleware as AsgiMiddleware  # noqa: E402
from identsphere.wsgi import IdentSphereMiddleware as WsgiMiddleware  # noqa: E402
from support.server import PLATFORM_KEY, Server  # noqa: E402
from support.users import sign_up  # noqa: E402

REVOKED = 100


def percentiles(samples: list[int]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] / 1000, ordered[len(ordered) * 99 // 100] / 1000


def timed(call: Callable[[], object], iterations: int) -> tuple[float, float]:
    for _ in range(iterations // 10):
        call()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - started)
    return percentiles(samples)


async def timed_async(call: Callable[[], Awaitable[object]], iterations: int) -> tuple[float, float]:
    for _ in range(iterations // 10):
        await call()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter_ns()
        await call()
        samples.append(time.perf_counter_ns() - started)
    return percentiles(samples)


def asgi_request(token: str) -> tuple[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Any]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/me",
        "headers": [(b"authorization", f"Bearer {token}".encode())],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    return scope, receive, send


async def handler(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["identsphere.claims"].sub.encode()})


def wsgi_handler(environ: Any, start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [environ["identsphere.claims"].sub.encode()]


def main(iterations: int) -> None:
    server = Server()
    try:
        with Client(server.base_url) as client:
            token = sign_up(client)[1].access_token
            for _ in range(REVOKED):
                client.logout(sign_up(client)[1].access_token)
        rows: list[tuple[str, tuple[float, float]]] = []

        plain = Verifier(server.base_url)
        with_feed = Verifier(server.base_url, platform_api_key=PLATFORM_KEY)
        plain.verify(token)
        with_feed.verify(token)
        assert with_feed.revocation_feed is not None
        assert with_feed.revocation_feed.entries >= REVOKED
        key = plain._checks.keys.current.keys[jwt.get_unverified_header(token)["kid"]]

        def pyjwt_alone() -> object:
            return jwt.decode(token, key, algorithms=["RS256"], issuer=server.base_url)

        rows.append(
            ("PyJWT alone (`jwt.decode`, same key and token), for comparison", timed(pyjwt_alone, iterations))
        )
        rows.append(
            ("`Verifier.verify`, revocation feed off", timed(lambda: plain.verify(token), iterations))
        )
        rows.append(
            (
                f"`Verifier.verify`, feed on ({REVOKED} revocations)",
                timed(lambda: with_feed.verify(token), iterations),
            )
        )

        wsgi = WsgiMiddleware(wsgi_handler, with_feed)
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/me", "HTTP_AUTHORIZATION": f"Bearer {token}"}

        def start_response(*_: Any) -> Callable[[bytes], object]:
            return lambda _: None

        rows.append(
            (
                "WSGI middleware + a trivial app, feed on",
                timed(lambda: wsgi(environ, start_response), iterations),
            )
        )

        async def asynchronous() -> None:
            verifier = AsyncVerifier(server.base_url, platform_api_key=PLATFORM_KEY)
            await verifier.verify(token)
            rows.append(
                (
                    "`AsyncVerifier.verify`, feed on",
                    await timed_async(lambda: verifier.verify(token), iterations),
                )
            )
            asgi = AsgiMiddleware(handler, verifier)
            scope, receive, send = asgi_request(token)
            rows.append(
                (
                    "ASGI middleware + a trivial app, feed on",
                    await timed_async(lambda: asgi(dict(scope), receive, send), iterations),
                )
            )
            await verifier.aclose()

        asyncio.run(asynchronous())
        plain.close()
        with_feed.close()
    finally:
        server.close()

    print(f"{iterations} calls each, Python {sys.version.split()[0]}, PyJWT {jwt.__version__}\n")
    print("| Path | p50 µs | p99 µs |\n|---|---|---|")
    for name, (p50, p99) in rows:
        print(f"| {name} | {p50:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
