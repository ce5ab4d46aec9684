"""The middleware and the FastAPI dependency in real apps on real ports (a Starlette app, a FastAPI app and a
Flask app: the `web` fixture is each in turn), against tokens of a real IdentSphere."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from identsphere import AsyncVerifier, Client, TokenResponse
from identsphere.asgi import IdentSphereMiddleware
from support.apps import APPS, POLL, Running, fastapi_app
from support.blocking import LoopThread
from support.server import PASSWORD, Server
from support.users import enroll, sign_up


@dataclass
class Web:
    """An app, a user of the organization it was made for, and an HTTP client to call it."""

    app: Running
    tokens: TokenResponse
    http: httpx.Client

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.get(self.app.url + path, headers=headers)


@pytest.fixture(params=sorted(APPS))
def web(request: pytest.FixtureRequest, server: Server, client: Client) -> Iterator[Web]:
    _, tokens = sign_up(client)
    app = APPS[request.param](server.base_url, tokens.session.organization_id)
    with httpx.Client(timeout=10) as http:
        yield Web(app, tokens, http)
    app.close()


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    """IdentSphere's own envelope, with the catalog's status and type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["type"] == ("authentication_error" if status == 401 else "permission_error")
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_valid_token_reaches_the_handler_with_its_claims(web: Web) -> None:
    response = web.get("/me", web.tokens.access_token)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "sub": web.tokens.user.id,
        "org": web.tokens.session.organization_id,
        "aal": "aal1",
    }


def test_no_token_or_a_bad_one_is_refused_in_the_api_envelope(web: Web) -> None:
    assert_refused(web.get("/me"), 401, "token_missing")
    assert_refused(web.get("/me", "not-a-jwt"), 401, "token_invalid")
    assert_refused(web.get("/me", web.tokens.refresh_token), 401, "token_invalid")
    basic = web.http.get(web.app.url + "/me", auth=("user", "password"))
    assert_refused(basic, 401, "token_missing")


def test_the_cookie_is_a_credential_and_a_cross_site_unsafe_request_with_it_is_refused(web: Web) -> None:
    cookie = {"Cookie": f"theme=dark; identsphere_at={web.tokens.access_token}"}
    url = web.app.url + "/me"
    assert web.http.get(url, headers=cookie).status_code == 200
    assert web.http.post(url, headers={**cookie, "Origin": web.app.url}).status_code == 200, "same origin"
    assert_refused(
        web.http.post(url, headers={**cookie, "Origin": "https://evil.example"}), 403, "csrf_rejected"
    )
    assert_refused(
        web.http.post(url, headers={**cookie, "Sec-Fetch-Site": "cross-site"}), 403, "csrf_rejected"
    )
    bearer = {"Authorization": f"Bearer {web.tokens.access_token}", "Origin": "https://evil.example"}
    assert web.http.post(url, headers=bearer).status_code == 200, "a bearer token is no ambient credential"


def test_a_route_that_requires_aal2_or_an_organization_refuses_other_sessions(
    web: Web, client: Client
) -> None:
    assert_refused(web.get("/aal2/me", web.tokens.access_token), 403, "insufficient_aal")
    _, confirmation = enroll(client, web.tokens)
    raised = web.get("/aal2/me", confirmation.tokens.access_token)
    assert (raised.status_code, raised.json()["aal"]) == (200, "aal2")

    assert web.get("/org/me", confirmation.tokens.access_token).status_code == 200
    _, stranger = sign_up(client)
    assert_refused(web.get("/org/me", stranger.access_token), 403, "not_a_member")


def test_a_logout_is_refused_within_the_poll_interval_plus_a_second(web: Web, client: Client) -> None:
    _, tokens = sign_up(client)
    assert web.get("/me", tokens.access_token).status_code == 200
    client.logout(tokens.access_token)
    started = time.monotonic()
    while (response := web.get("/me", tokens.access_token)).status_code == 200:
        assert time.monotonic() - started < POLL + 1, "the revoked token was still accepted"
        time.sleep(0.02)
    assert_refused(response, 401, "token_revoked")


def test_fastapi_compares_the_route_s_organization_and_answers_client_refusals_in_the_envelope(
    server: Server, client: Client
) -> None:
    email, tokens = sign_up(client)
    app = fastapi_app(server.base_url, tokens.session.organization_id)
    try:
        with httpx.Client(
            base_url=app.url, headers={"Authorization": f"Bearer {tokens.access_token}"}
        ) as http:
            own = http.get(f"/orgs/{tokens.session.organization_id}/things")
            assert (own.status_code, own.json()["org"]) == (200, tokens.session.organization_id)
            assert_refused(http.get("/orgs/another-organization/things"), 403, "not_a_member")

            assert http.post("/sign-in", json={"email": email, "password": PASSWORD}).json() == {
                "signed_in": tokens.user.id
            }
            wrong = http.post("/sign-in", json={"email": email, "password": "wrong horse battery staple"})
            assert_refused(wrong, 401, "invalid_credentials")
    finally:
        app.close()


def test_a_websocket_handshake_without_a_valid_token_is_closed(
    server: Server, client: Client, loop: LoopThread
) -> None:
    _, tokens = sign_up(client)
    verifier = AsyncVerifier(server.base_url)

    async def echo_sub(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.scope["identsphere.claims"].sub)
        await websocket.close()

    app = IdentSphereMiddleware(Starlette(routes=[WebSocketRoute("/ws", echo_sub)]), verifier)

    async def handshake(headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
        """The messages the app sends to a client that connects and then waits."""
        scope = {
            "type": "websocket",
            "path": "/ws",
            "raw_path": b"/ws",
            "query_string": b"",
            "headers": headers,
        }
        incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await incoming.put({"type": "websocket.connect"})
        sent: list[dict[str, Any]] = []

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))
            if message["type"] == "websocket.close":
                await incoming.put({"type": "websocket.disconnect", "code": message.get("code", 1000)})

        await app(scope, incoming.get, send)
        return sent

    accepted = loop.run(handshake([(b"authorization", f"Bearer {tokens.access_token}".encode())]))
    assert [m["type"] for m in accepted] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert accepted[1]["text"] == tokens.user.id
    refused = loop.run(handshake([]))
    assert refused == [{"type": "websocket.close", "code": 1008, "reason": "token_missing"}], "never accepted"
    loop.run(verifier.aclose())
