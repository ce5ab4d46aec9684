"""Real web apps protected by the SDK, served on real ports: a Starlette app (uvicorn), a FastAPI app
(uvicorn) and a Flask app (werkzeug). Each has the same routes:

- `/me` (GET and POST): any valid access token; answers the claims it was given;
- `/aal2/me`: a session with a second factor;
- `/org/me`: a token of the organization the app was made for.

FastAPI's app also has `/orgs/{org_id}/things` (the route's own organization) and `/sign-in` (a sign-in
through `AsyncClient`, whose refusals the installed handler answers in the envelope).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time.

import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Callable

import uvicorn
from fastapi import Depends, FastAPI
from flask import Flask, request
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

import identsphere.asgi
import identsphere.wsgi
from identsphere import AsyncClient, AsyncVerifier, Claims, TokenResponse, Verifier
from identsphere.fastapi import install, require_user
from support.server import PLATFORM_KEY, free_port

#: The apps' poll of the revocation feed.
POLL = 0.3


def shown(claims: Claims) -> dict[str, Any]:
    """What every route answers: the claims it was handed."""
    return {"sub": claims.sub, "org": claims.org, "aal": claims.aal}


class Running:
    """An app served in a thread on a free port; `close` stops it."""

    def __init__(self, url: str, close: Callable[[], None]) -> None:
        self.url = url
        self.close = close


def serve_asgi(app: Any) -> Running:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)

    def close() -> None:
        server.should_exit = True
        thread.join()

    return Running(f"http://127.0.0.1:{port}", close)


def serve_wsgi(app: Any, verifier: Verifier) -> Running:
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def close() -> None:
        server.shutdown()
        server.server_close()
        thread.join()
        verifier.close()

    return Running(f"http://127.0.0.1:{server.server_port}", close)


def _closing(verifier: AsyncVerifier) -> Callable[[Any], Any]:
    """The lifespan that closes the verifier when the server stops (its poller, its connections)."""

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        await verifier.aclose()

    return lifespan


def starlette_app(base_url: str, organization: str) -> Running:
    verifier = AsyncVerifier(base_url, platform_api_key=PLATFORM_KEY, revocation_poll_interval=POLL)

    async def me(request: Request) -> JSONResponse:
        return JSONResponse(shown(request.scope["identsphere.claims"]))

    routes = Starlette(routes=[Route("/me", me, methods=["GET", "POST"])])
    gate = identsphere.asgi.IdentSphereMiddleware
    app = Starlette(
        routes=[
            Route("/me", me, methods=["GET", "POST"]),
            Mount("/aal2", app=gate(routes, verifier, require_aal2=True)),
            Mount("/org", app=gate(routes, verifier, organization=organization)),
        ],
        middleware=[Middleware(gate, verifier=verifier)],
        lifespan=_closing(verifier),
    )
    return serve_asgi(app)


def fastapi_app(base_url: str, organization: str) -> Running:
    verifier = AsyncVerifier(base_url, platform_api_key=PLATFORM_KEY, revocation_poll_interval=POLL)
    client = AsyncClient(base_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await verifier.aclose()
        await client.aclose()

    app = FastAPI(lifespan=lifespan)
    install(app, verifier)

    @app.get("/me")
    @app.post("/me")
    async def me(claims: Annotated[Claims, Depends(require_user())]) -> dict[str, Any]:
        return shown(claims)

    @app.get("/aal2/me")
    async def aal2(claims: Annotated[Claims, Depends(require_user(aal2=True))]) -> dict[str, Any]:
        return shown(claims)

    @app.get("/org/me")
    async def org(
        claims: Annotated[Claims, Depends(require_user(organization=organization))],
    ) -> dict[str, Any]:
        return shown(claims)

    @app.get("/orgs/{org_id}/things")
    async def things(claims: Annotated[Claims, Depends(require_user(org_param="org_id"))]) -> dict[str, Any]:
        return shown(claims)

    @app.post("/sign-in")
    async def sign_in(form: dict[str, str]) -> dict[str, Any]:
        result = await client.login(form["email"], form["password"])
        if isinstance(result, TokenResponse):
            return {"signed_in": result.user.id}
        return {"mfa_required": list(result.factors)}

    return serve_asgi(app)


def flask_app(base_url: str, organization: str) -> Running:
    verifier = Verifier(base_url, platform_api_key=PLATFORM_KEY, revocation_poll_interval=POLL)
    flask = Flask(__name__)

    @flask.route("/me", methods=["GET", "POST"])
    def me() -> dict[str, Any]:
        return shown(request.environ["identsphere.claims"])

    gate = identsphere.wsgi.IdentSphereMiddleware
    routes = flask.wsgi_app
    app = DispatcherMiddleware(
        gate(routes, verifier),
        {
            "/aal2": gate(routes, verifier, require_aal2=True),
            "/org": gate(routes, verifier, organization=organization),
        },
    )
    return serve_wsgi(app, verifier)


APPS: dict[str, Callable[[str, str], Running]] = {
    "starlette": starlette_app,
    "fastapi": fastapi_app,
    "flask": flask_app,
}
