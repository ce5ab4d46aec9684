"""WSGI middleware (Flask, Django, any WSGI app): every request must carry a valid access token.

    app.wsgi_app = IdentSphereMiddleware(app.wsgi_app, Verifier("https://auth.example.com"))   # Flask
    application = IdentSphereMiddleware(get_wsgi_application(), verifier)                     # Django

The claims are at `environ["identsphere.claims"]` (`request.environ[...]` in Flask, `request.META[...]` in
Django). A request that fails is answered here with the API's envelope (`401 token_missing`,
`token_invalid`, `token_expired`, `token_revoked`; `403 insufficient_aal`, `not_a_member`, `csrf_rejected`)
and never reaches the app. To protect part of an app only, wrap that part (werkzeug's
`DispatcherMiddleware`). Plain WSGI: nothing is imported from any framework.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING

from identsphere._gate import CLAIMS, Policy, answer
from identsphere.errors import IdentSphereError
from identsphere.verifier import Verifier

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class IdentSphereMiddleware:
    """Verifies the access token of every request before `app` sees it.

    `require_aal2`: refuse sessions without a second factor (`403 insufficient_aal`). `organization`: refuse
    tokens of any other organization id (`403 not_a_member`). `allowed_origins`: origins allowed to make
    cookie-authenticated unsafe requests (default: the request's own host).
    """

    def __init__(
        self,
        app: WSGIApplication,
        verifier: Verifier,
        *,
        require_aal2: bool = False,
        organization: str | None = None,
        allowed_origins: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.policy = Policy.of(require_aal2, organization, allowed_origins)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def header(name: str) -> str | None:
            value = environ.get("HTTP_" + name.upper().replace("-", "_"))
            return value if isinstance(value, str) else None

        try:
            token = self.policy.credential(environ.get("REQUEST_METHOD", "GET"), header)
            claims = self.policy.admit(self.verifier.verify(token))
        except IdentSphereError as error:
            status, headers, body = answer(error)
            start_response(f"{status} {HTTPStatus(status).phrase}", headers)
            return [body]
        environ[CLAIMS] = claims
        return self.app(environ, start_response)
