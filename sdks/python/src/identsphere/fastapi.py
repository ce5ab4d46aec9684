"""FastAPI: a dependency per route, `require_user(...)`, answering refusals in the API's envelope.

    verifier = AsyncVerifier("https://auth.example.com", platform_api_key=...)
    app = FastAPI()
    identsphere.fastapi.install(app, verifier)

    @app.get("/me")
    async def me(claims: Claims = Depends(require_user())) -> dict[str, str]: ...

`install` keeps the verifier for the dependency and makes every `IdentSphereError` raised while handling a
request (a refusal of `require_user`, or of `Client` calls your routes make) an answer in the API's
envelope with its status; a client-side failure (IdentSphere unreachable) becomes `503 service_unavailable`.
The module imports FastAPI, which the application brings: it is not a dependency of the SDK.
"""

# No `from __future__ import annotations`: FastAPI reads the dependency's signature at run time.

from collections.abc import Awaitable, Iterable
from typing import Callable, Optional

from fastapi import FastAPI, Request
from fastapi.responses import Response

from identsphere._gate import CLAIMS, Policy, answer
from identsphere.claims import Claims
from identsphere.errors import IdentSphereError
from identsphere.verifier import AsyncVerifier

#: Where `install` keeps what the dependency needs, on `app.state`.
_STATE = "identsphere"


def install(app: FastAPI, verifier: AsyncVerifier, *, allowed_origins: Iterable[str] = ()) -> None:
    """Sets `app` up for `require_user`: the verifier it uses, `allowed_origins` for cookie-authenticated
    unsafe requests (default: the request's own host), and the envelope for refusals."""
    setattr(app.state, _STATE, (verifier, Policy.of(False, None, allowed_origins).allowed_origins))
    app.add_exception_handler(IdentSphereError, _answer)


def require_user(
    *, aal2: bool = False, organization: Optional[str] = None, org_param: Optional[str] = None
) -> Callable[[Request], Awaitable[Claims]]:
    """A dependency giving the claims of the request's valid access token (bearer or `identsphere_at` cookie).

    `aal2`: refuse sessions without a second factor (`403 insufficient_aal`). `organization`: refuse tokens
    of any other organization id; `org_param`: of any other than the route's path parameter of that name
    (`403 not_a_member`). The claims are also left at `request.scope["identsphere.claims"]`.
    """

    async def claims_of(request: Request) -> Claims:
        try:
            verifier, allowed_origins = getattr(request.app.state, _STATE)
        except AttributeError:
            raise RuntimeError(
                "call identsphere.fastapi.install(app, verifier) before using require_user"
            ) from None
        policy = Policy(aal2, organization, allowed_origins)
        token = policy.credential(request.method, request.headers.get)
        route_org = request.path_params.get(org_param) if org_param else None
        if org_param and not route_org:
            raise RuntimeError(
                f"require_user(org_param={org_param!r}) on a route without that path parameter"
            )
        claims = policy.admit(await verifier.verify(token), route_org)
        request.scope[CLAIMS] = claims
        return claims

    return claims_of


async def _answer(_: Request, error: Exception) -> Response:
    if not isinstance(error, IdentSphereError):  # registered for IdentSphereError only
        raise error
    status, headers, body = answer(error)
    return Response(content=body, status_code=status, headers=dict(headers))
