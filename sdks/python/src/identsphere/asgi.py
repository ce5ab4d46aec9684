"""ASGI middleware (Starlette, FastAPI, any ASGI app): every request must carry a valid access token.

    app.add_middleware(IdentSphereMiddleware, verifier=AsyncVerifier("https://auth.example.com"))

The claims are at `scope["identsphere.claims"]` (`request.scope[...]` in Starlette). A request that fails is
answered here with the API's envelope (`401 token_missing`, `token_invalid`, `token_expired`,
`token_revoked`; `403 insufficient_aal`, `not_a_member`, `csrf_rejected`) and never reaches the app; a
refused WebSocket handshake is closed with code 1008 and the error code as reason. Lifespan events pass
through. To protect part of an app only, wrap that part (a Starlette `Mount`) or use the FastAPI dependency.
Plain ASGI: nothing is imported from any framework.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, MutableMapping
from typing import Any, Callable

from identsphere._gate import CLAIMS, Policy, answer
from identsphere.errors import IdentSphereError
from identsphere.verifier import AsyncVerifier

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The WebSocket close code of a refused handshake: policy violation (RFC 6455).
POLICY_VIOLATION = 1008


class IdentSphereMiddleware:
    """Verifies the access token of every HTTP request and WebSocket handshake before `app` sees it.

    `require_aal2`: refuse sessions without a second factor (`403 insufficient_aal`). `organization`: refuse
    tokens of any other organization id (`403 not_a_member`). `allowed_origins`: origins allowed to make
    cookie-authenticated unsafe requests (default: the request's own host).
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: AsyncVerifier,
        *,
        require_aal2: bool = False,
        organization: str | None = None,
        allowed_origins: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.policy = Policy.of(require_aal2, organization, allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        try:
            token = self.policy.credential(scope.get("method", "GET"), headers.get)
            claims = self.policy.admit(await self.verifier.verify(token))
        except IdentSphereError as error:
            await _refuse(scope, send, error)
            return
        scope[CLAIMS] = claims
        await self.app(scope, receive, send)


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name: the first of a repeated one, but repeated `Cookie` headers
    (HTTP/2 sends one per cookie) joined as one."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name not in headers:
            headers[name] = value
        elif name == "cookie":
            headers[name] = f"{headers[name]}; {value}"
    return headers


async def _refuse(scope: Scope, send: Send, error: IdentSphereError) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": POLICY_VIOLATION, "reason": error.code})
        return
    status, headers, body = answer(error)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(name.encode(), value.encode()) for name, value in headers],
        }
    )
    await send({"type": "http.response.body", "body": body})
