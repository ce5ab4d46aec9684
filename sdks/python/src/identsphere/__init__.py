"""IdentSphere for Python servers.

- `Client` / `AsyncClient`: the REST API, typed (sign-up, sign-in with its second-factor step, refresh and
  organization switch, logout, the session, TOTP, the account calls). Every refusal is an `IdentSphereError`.
- `Verifier` / `AsyncVerifier`: access tokens checked locally against the JWKS, and the revocation feed.
- `identsphere.asgi`, `identsphere.wsgi`: middleware; `identsphere.fastapi`: a dependency per route.
"""

from identsphere._revocations import FeedStatus
from identsphere._version import __version__
from identsphere.claims import Claims
from identsphere.client import AsyncClient, Client
from identsphere.errors import IdentSphereError
from identsphere.models import (
    Factor,
    LogoutScope,
    MfaRequired,
    Organization,
    PendingOrganization,
    Session,
    SessionInfo,
    SignInResult,
    TokenResponse,
    TotpConfirmation,
    TotpEnrollment,
    User,
)
from identsphere.verifier import AsyncVerifier, Verifier

__all__ = [
    "AsyncClient",
    "AsyncVerifier",
    "Claims",
    "Client",
    "Factor",
    "FeedStatus",
    "IdentSphereError",
    "LogoutScope",
    "MfaRequired",
    "Organization",
    "PendingOrganization",
    "Session",
    "SessionInfo",
    "SignInResult",
    "TokenResponse",
    "TotpConfirmation",
    "TotpEnrollment",
    "User",
    "Verifier",
    "__version__",
]
