"""What the ASGI and WSGI middleware and the FastAPI dependency share: where a request's credential is found,
what a route may require of the claims, and how a refusal is answered.

The credential is `Authorization: Bearer <token>`, else the `identsphere_at` cookie IdentSphere sets. A
cookie-only unsafe request (`POST`, `PUT`, `PATCH`, `DELETE`) must come from an allowed origin, as
IdentSphere itself requires (`csrf_rejected`): a browser sends the cookie whichever site made the request.
Refusals are the API's envelope with the catalog's status, so a client of your service reads them as it
reads IdentSphere's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Callable

from identsphere.claims import Claims
from identsphere.errors import IdentSphereError, refusal

#: The name of the access-token cookie IdentSphere sets.
ACCESS_COOKIE = "identsphere_at"
#: Where the middleware put the claims: `scope[CLAIMS]` (ASGI), `environ[CLAIMS]` (WSGI).
CLAIMS = "identsphere.claims"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

#: A request's header by lower-case name (`None` when absent).
Headers = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Policy:
    """What a protected route requires, beyond a valid access token."""

    #: A session with a verified second factor (`aal2`); else `403 insufficient_aal`.
    require_aal2: bool = False
    #: This organization id in the token's `org`; else `403 not_a_member`.
    organization: str | None = None
    #: Origins (`https://app.example.com`) allowed to make cookie-authenticated unsafe requests; empty: only
    #: the request's own host.
    allowed_origins: frozenset[str] = frozenset()

    @classmethod
    def of(cls, require_aal2: bool, organization: str | None, allowed_origins: Iterable[str]) -> Policy:
        return cls(require_aal2, organization, frozenset(o.rstrip("/") for o in allowed_origins))

    def credential(self, method: str, header: Headers) -> str:
        """The access token: `token_missing` without one, `csrf_rejected` for a cookie sent cross-site."""
        scheme, _, bearer = (header("authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and bearer.strip():
            return bearer.strip()
        cookie = _cookie(header("cookie"), ACCESS_COOKIE)
        if cookie is None:
            raise refusal("token_missing")
        if not self._same_origin(method, header):
            raise refusal("csrf_rejected")
        return cookie

    def admit(self, claims: Claims, organization: str | None = None) -> Claims:
        """The claims, if they meet the route's requirements (`organization`: the route's own, e.g. a path
        parameter, in place of the configured one)."""
        if self.require_aal2 and not claims.is_aal2:
            raise refusal("insufficient_aal")
        required = organization or self.organization
        if required is not None and claims.org != required:
            raise refusal("not_a_member")
        return claims

    def _same_origin(self, method: str, header: Headers) -> bool:
        """Safe methods pass; an unsafe one needs an allowed `Origin` (without a list, the request's own
        host), or, without `Origin`, no `Sec-Fetch-Site: cross-site`."""
        if method.upper() in _SAFE_METHODS:
            return True
        origin = header("origin")
        if origin is None:
            return header("sec-fetch-site") != "cross-site"
        if not self.allowed_origins:
            _, separator, host = origin.partition("://")
            return bool(separator) and host == header("host")
        return origin in self.allowed_origins


def _cookie(header: str | None, name: str) -> str | None:
    for pair in (header or "").split(";"):
        key, _, value = pair.strip().partition("=")
        if key == name and value:
            return value
    return None


def answer(error: IdentSphereError) -> tuple[int, list[tuple[str, str]], bytes]:
    """The response of a refusal: status, headers and the envelope. A failure on the client's side (status 0:
    IdentSphere could not be reached) is answered as `503 service_unavailable`."""
    if error.status < 400:
        error = refusal("service_unavailable")
    body = json.dumps(error.envelope()).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
    if error.status == 401:
        headers.append(("www-authenticate", "Bearer"))
    if error.status in (429, 503):
        headers.append(("retry-after", str(error.retry_after or 1)))
    return error.status, headers, body
