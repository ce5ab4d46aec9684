"""The claims of a verified access token, as the API reference (docs/api.md) lists them.

`sub`, `exp`, `iat` and `typ` are always there; every other claim is optional. Values this version does
not know (a new `aal`) are kept as they are, and only `aal2` counts as a second factor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from identsphere.errors import refusal

_T = TypeVar("_T", str, int)


@dataclass(frozen=True)
class Claims:
    """What the verifier hands to handlers once every check has passed."""

    #: The user id (a UUID).
    sub: str
    #: Expiry, Unix seconds.
    exp: int
    #: Issued at, Unix seconds.
    iat: int
    #: `access`: the only type the verifier accepts.
    typ: str
    #: The organization of the session (a UUID).
    org: str | None = None
    #: The issuer: IdentSphere's public base URL, checked against the configured issuer.
    iss: str | None = None
    #: The user's email, when known.
    email: str | None = None
    #: The token id: what a `jti` revocation names.
    jti: str | None = None
    #: The session family id, the same across refreshes: what a `sid` revocation names.
    sid: str | None = None
    #: `aal1` (one factor) or `aal2` (a second factor verified).
    aal: str | None = None
    #: When the user originally authenticated, Unix seconds.
    auth_time: int | None = None
    #: `password`, `passkey` or `social_oauth`.
    auth_method: str | None = None

    @property
    def is_aal2(self) -> bool:
        """Whether a second factor was verified in this session."""
        return self.aal == "aal2"

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Claims:
        """The claims of a payload whose signature has been checked; `token_invalid` for a mistyped claim
        (a token can only be mistyped if IdentSphere changed its contract, so it is refused, not guessed)."""
        return cls(
            sub=_required(payload, "sub", str),
            exp=_required(payload, "exp", int),
            iat=_required(payload, "iat", int),
            typ=_required(payload, "typ", str),
            org=_optional(payload, "org", str),
            iss=_optional(payload, "iss", str),
            email=_optional(payload, "email", str),
            jti=_optional(payload, "jti", str),
            sid=_optional(payload, "sid", str),
            aal=_optional(payload, "aal", str),
            auth_time=_optional(payload, "auth_time", int),
            auth_method=_optional(payload, "auth_method", str),
        )


def _optional(payload: Mapping[str, object], name: str, kind: type[_T]) -> _T | None:
    value = payload.get(name)
    if value is None:
        return None
    # `bool` is an `int` to Python, never in a token.
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    raise refusal("token_invalid")


def _required(payload: Mapping[str, object], name: str, kind: type[_T]) -> _T:
    value = _optional(payload, name, kind)
    if value is None:
        raise refusal("token_invalid")
    return value
