"""The shapes of the API the client returns, typed, with the API's field names.

Each class reads itself from the JSON the server sends (`from_json`), checking the types of the fields it
needs and ignoring fields it does not know, so a newer server that adds one does not break an older SDK. A
body that lacks a required field is `unexpected_response`. Secrets (tokens, TOTP secrets, recovery codes)
are left out of every `repr`, so logging a result never logs a credential.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal, Union

from identsphere.errors import UNEXPECTED_RESPONSE, IdentSphereError, client_error

#: Which session families a logout ends: this one (`local`), every other one of the user, or all of them.
LogoutScope = Literal["local", "others", "global"]

# RFC 3339 as the server writes it: fractions of any length (`09:55:11.82Z`), which `fromisoformat` before
# Python 3.11 does not read.
_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$")


class _Fields:
    """Typed reads of one JSON object; a missing or mistyped field is `unexpected_response`."""

    def __init__(self, value: object, what: str) -> None:
        if not isinstance(value, dict):
            raise _unexpected(f"{what} is not a JSON object")
        self._value: dict[str, object] = value
        self._what = what

    def _wrong(self, name: str) -> IdentSphereError:
        return _unexpected(f"{self._what}.{name} is missing or not of the expected type")

    def text(self, name: str) -> str:
        value = self._value.get(name)
        if isinstance(value, str):
            return value
        raise self._wrong(name)

    def opt_text(self, name: str) -> str | None:
        return self.text(name) if self.has(name) else None

    def integer(self, name: str) -> int:
        value = self._value.get(name)
        # `bool` is an `int` to Python, never to the API.
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise self._wrong(name)

    def flag(self, name: str) -> bool:
        value = self._value.get(name)
        if isinstance(value, bool):
            return value
        raise self._wrong(name)

    def time(self, name: str) -> datetime:
        parsed = parse_timestamp(self.text(name))
        if parsed is None:
            raise _unexpected(f"{self._what}.{name} is not an RFC 3339 timestamp")
        return parsed

    def texts(self, name: str) -> tuple[str, ...]:
        values = self._value.get(name)
        if isinstance(values, list) and all(isinstance(v, str) for v in values):
            return tuple(values)
        raise self._wrong(name)

    def obj(self, name: str) -> _Fields:
        return _Fields(self._value.get(name), f"{self._what}.{name}")

    def objs(self, name: str) -> list[_Fields]:
        values = self._value.get(name)
        if not isinstance(values, list):
            raise self._wrong(name)
        return [_Fields(v, f"{self._what}.{name}[]") for v in values]

    def has(self, name: str) -> bool:
        return self._value.get(name) is not None


def _unexpected(message: str) -> IdentSphereError:
    return client_error(UNEXPECTED_RESPONSE, message)


def parse_timestamp(value: str) -> datetime | None:
    """An RFC 3339 timestamp as an aware `datetime` (fractions beyond microseconds dropped)."""
    match = _TIMESTAMP.match(value)
    if match is None:
        return None
    seconds, fraction, zone = match.groups()
    micros = (fraction or "").ljust(6, "0")[:6]
    offset = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{seconds}.{micros}{offset}").astimezone(timezone.utc)


@dataclass(frozen=True)
class User:
    """The user, as token and session responses show it."""

    id: str
    email: str
    email_verified: bool
    display_name: str | None
    created_at: datetime

    @classmethod
    def from_json(cls, f: _Fields) -> User:
        return cls(
            id=f.text("id"),
            email=f.text("email"),
            email_verified=f.flag("email_verified"),
            display_name=f.opt_text("display_name"),
            created_at=f.time("created_at"),
        )


@dataclass(frozen=True)
class Session:
    """A session family: one sign-in and its refreshes, in one organization. `id` is the tokens' `sid`."""

    id: str
    organization_id: str
    aal: str
    auth_method: str
    auth_time: int
    expires_at: datetime

    @classmethod
    def from_json(cls, f: _Fields) -> Session:
        return cls(
            id=f.text("id"),
            organization_id=f.text("organization_id"),
            aal=f.text("aal"),
            auth_method=f.text("auth_method"),
            auth_time=f.integer("auth_time"),
            expires_at=f.time("expires_at"),
        )


@dataclass(frozen=True)
class Organization:
    """The organization of a session, with the user's `role` in it (`owner`, `admin` or `member`)."""

    id: str
    slug: str
    name: str
    role: str

    @classmethod
    def from_json(cls, f: _Fields) -> Organization:
        return cls(id=f.text("id"), slug=f.text("slug"), name=f.text("name"), role=f.text("role"))


@dataclass(frozen=True)
class PendingOrganization:
    """An organization a new account joins once its address is verified (sign-up by email domain)."""

    id: str
    slug: str
    name: str
    joins_when: str

    @classmethod
    def from_json(cls, f: _Fields) -> PendingOrganization:
        return cls(id=f.text("id"), slug=f.text("slug"), name=f.text("name"), joins_when=f.text("joins_when"))


@dataclass(frozen=True)
class Factor:
    """A second factor the user has enrolled (`totp` or `passkey`)."""

    type: str
    confirmed_at: datetime

    @classmethod
    def from_json(cls, f: _Fields) -> Factor:
        return cls(type=f.text("type"), confirmed_at=f.time("confirmed_at"))


@dataclass(frozen=True)
class TokenResponse:
    """A completed sign-in or refresh: the token pair, the user and the session."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    token_type: str
    expires_in: int
    user: User
    session: Session
    pending_organization: PendingOrganization | None = None

    @classmethod
    def from_json(cls, f: _Fields) -> TokenResponse:
        return cls(
            access_token=f.text("access_token"),
            refresh_token=f.text("refresh_token"),
            token_type=f.text("token_type"),
            expires_in=f.integer("expires_in"),
            user=User.from_json(f.obj("user")),
            session=Session.from_json(f.obj("session")),
            pending_organization=(
                PendingOrganization.from_json(f.obj("pending_organization"))
                if f.has("pending_organization")
                else None
            ),
        )


@dataclass(frozen=True)
class MfaRequired:
    """The password was right and a second factor is due: no session yet, a normal outcome of a sign-in.

    Complete it with `verify_mfa(code, mfa_token=...)`. With `enrollment_required` (an organization that
    requires a second factor, a user who has none) enroll first: `enroll_totp(mfa_token=...)`, then
    `confirm_totp(code, mfa_token=...)`, which completes the sign-in.
    """

    mfa_token: str = field(repr=False)
    factors: tuple[str, ...]
    enrollment_required: bool

    @classmethod
    def from_json(cls, f: _Fields) -> MfaRequired:
        return cls(
            mfa_token=f.text("mfa_token"),
            factors=f.texts("factors"),
            enrollment_required=f.has("enrollment_required") and f.flag("enrollment_required"),
        )


#: What `login` and `register` return: the tokens, or the second-factor step.
SignInResult = Union[TokenResponse, MfaRequired]


def sign_in_result(f: _Fields) -> SignInResult:
    """A token response, or `MfaRequired` when the body says `mfa_required`."""
    if f.has("mfa_required") and f.flag("mfa_required"):
        return MfaRequired.from_json(f)
    return TokenResponse.from_json(f)


@dataclass(frozen=True)
class SessionInfo:
    """`GET /v1/auth/session`: who the access token belongs to, its session and organization, the factors."""

    user: User
    session: Session
    organization: Organization
    factors: tuple[Factor, ...]
    recovery_codes_left: int

    @classmethod
    def from_json(cls, f: _Fields) -> SessionInfo:
        return cls(
            user=User.from_json(f.obj("user")),
            session=Session.from_json(f.obj("session")),
            organization=Organization.from_json(f.obj("organization")),
            factors=tuple(Factor.from_json(item) for item in f.objs("factors")),
            recovery_codes_left=f.integer("recovery_codes_left"),
        )


@dataclass(frozen=True)
class TotpEnrollment:
    """A TOTP enrollment waiting for its first code: show `qr_svg` (a data URI) or `secret` to the user."""

    secret: str = field(repr=False)
    otpauth_uri: str = field(repr=False)
    qr_svg: str = field(repr=False)

    @classmethod
    def from_json(cls, f: _Fields) -> TotpEnrollment:
        return cls(secret=f.text("secret"), otpauth_uri=f.text("otpauth_uri"), qr_svg=f.text("qr_svg"))


@dataclass(frozen=True)
class TotpConfirmation:
    """TOTP is on: the session at `aal2` and the ten recovery codes, shown to the user this once."""

    tokens: TokenResponse
    recovery_codes: tuple[str, ...] = field(repr=False)

    @classmethod
    def from_json(cls, f: _Fields) -> TotpConfirmation:
        return cls(tokens=TokenResponse.from_json(f), recovery_codes=f.texts("recovery_codes"))


def read(value: object) -> _Fields:
    """The typed reader of a response body."""
    return _Fields(value, "response")
