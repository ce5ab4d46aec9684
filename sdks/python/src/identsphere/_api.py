"""The calls of the REST API, written once for `Client` and `AsyncClient`: what to send, and what the answer
means. No I/O here: each function returns a `Call` that a client sends with its own HTTP client, then
hands the response back to `Call.outcome`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Callable, Generic, TypeVar

import httpx

from identsphere import models
from identsphere._version import __version__
from identsphere.errors import (
    NETWORK_ERROR,
    UNEXPECTED_RESPONSE,
    IdentSphereError,
    client_error,
    from_response,
)

T = TypeVar("T")

USER_AGENT = f"identsphere-python/{__version__} httpx/{httpx.__version__}"


def timeout(total: float, connect: float) -> httpx.Timeout:
    """The SDK's timeouts: `connect` to open a connection, `total` for each phase after it (httpx has none for
    the whole call; the bodies are small, so a call takes about one read)."""
    return httpx.Timeout(total, connect=min(connect, total))


def no_cookies() -> CookieJar:
    """The cookie jar of the SDK's own HTTP clients: it keeps none. IdentSphere sets its session cookies on
    every sign-in; a jar that kept them would send one user's session with the next user's calls."""
    return CookieJar(DefaultCookiePolicy(allowed_domains=[]))


def base(url: str) -> str:
    """A base URL as calls are joined to it; only `http://` and `https://` are IdentSphere's."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the IdentSphere base URL must start with http:// or https://: {url!r}")
    return url.rstrip("/")


def network_error(error: httpx.TransportError) -> IdentSphereError:
    """No response: refused, reset, timed out. httpx's message names no body, so no secret."""
    return client_error(NETWORK_ERROR, f"no response from IdentSphere: {type(error).__name__}: {error}")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the reading of its answer."""

    method: str
    path: str
    #: The result of a 2xx answer, from its JSON body (`None` for the answers without one).
    parse: Callable[[models._Fields | None], T]
    body: Mapping[str, Any] | None = None
    bearer: str | None = None

    def request(self, http: httpx.Client | httpx.AsyncClient, base_url: str) -> httpx.Request:
        """The request, built by `http` (its headers, auth and extensions apply) without any cookie: the
        caller's token is the only credential sent, even when `http` is one of yours that keeps cookies."""
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer}"
        request = http.build_request(self.method, base_url + self.path, json=self.body, headers=headers)
        request.headers.pop("cookie", None)
        return request

    def outcome(self, response: httpx.Response) -> T:
        """The result of a 2xx answer; an `IdentSphereError` for anything else."""
        try:
            body = json.loads(response.content) if response.content else None
        except ValueError:
            body = None
            if response.is_success:
                raise client_error(
                    UNEXPECTED_RESPONSE, f"HTTP {response.status_code} with a body that is not JSON"
                ) from None
        if not response.is_success:
            raise from_response(response.status_code, response.headers, body)
        return self.parse(None if body is None else models.read(body))


def _nothing(_: models._Fields | None) -> None:
    return None


def _some(parse: Callable[[models._Fields], T]) -> Callable[[models._Fields | None], T]:
    """`parse` for an answer that must have a body."""

    def parse_body(fields: models._Fields | None) -> T:
        if fields is None:
            raise client_error(UNEXPECTED_RESPONSE, "an empty answer where the API returns a body")
        return parse(fields)

    return parse_body


def _body(**fields: Any) -> dict[str, Any]:
    """A JSON body of the fields given (`None` is an option left out)."""
    return {name: value for name, value in fields.items() if value is not None}


def register(
    email: str,
    password: str,
    display_name: str | None,
    organization: str | None,
    invitation: str | None,
) -> Call[models.SignInResult]:
    body = _body(
        email=email,
        password=password,
        display_name=display_name,
        organization=organization,
        invitation=invitation,
    )
    return Call("POST", "/v1/auth/register", _some(models.sign_in_result), body=body)


def login(email: str, password: str, organization: str | None) -> Call[models.SignInResult]:
    body = _body(email=email, password=password, organization=organization)
    return Call("POST", "/v1/auth/login", _some(models.sign_in_result), body=body)


def refresh(refresh_token: str, organization: str | None) -> Call[models.TokenResponse]:
    body = _body(refresh_token=refresh_token, organization=organization)
    return Call("POST", "/v1/auth/refresh", _some(models.TokenResponse.from_json), body=body)


def logout(access_token: str | None, refresh_token: str | None, scope: str) -> Call[None]:
    body = _body(scope=scope, refresh_token=refresh_token)
    return Call("POST", "/v1/auth/logout", _nothing, body=body, bearer=access_token)


def session(access_token: str) -> Call[models.SessionInfo]:
    return Call("GET", "/v1/auth/session", _some(models.SessionInfo.from_json), bearer=access_token)


def verify_mfa(
    code: str, mfa_token: str | None, access_token: str | None, refresh_token: str | None
) -> Call[models.TokenResponse]:
    body = _body(code=code, mfa_token=mfa_token, refresh_token=refresh_token)
    return Call(
        "POST", "/v1/auth/mfa/verify", _some(models.TokenResponse.from_json), body=body, bearer=access_token
    )


def enroll_totp(
    access_token: str | None, mfa_token: str | None, password: str | None
) -> Call[models.TotpEnrollment]:
    body = _body(mfa_token=mfa_token, password=password)
    return Call(
        "POST", "/v1/auth/mfa/totp", _some(models.TotpEnrollment.from_json), body=body, bearer=access_token
    )


def confirm_totp(
    code: str, access_token: str | None, refresh_token: str | None, mfa_token: str | None
) -> Call[models.TotpConfirmation]:
    body = _body(code=code, refresh_token=refresh_token, mfa_token=mfa_token)
    parse = _some(models.TotpConfirmation.from_json)
    return Call("POST", "/v1/auth/mfa/totp/confirm", parse, body=body, bearer=access_token)


def remove_totp(access_token: str, password: str | None) -> Call[None]:
    body = None if password is None else {"password": password}
    return Call("DELETE", "/v1/auth/mfa/totp", _nothing, body=body, bearer=access_token)


def forgot_password(email: str) -> Call[None]:
    return Call("POST", "/v1/auth/password/forgot", _nothing, body={"email": email})


def reset_password(token: str, password: str) -> Call[None]:
    return Call("POST", "/v1/auth/password/reset", _nothing, body={"token": token, "password": password})


def change_password(access_token: str, current_password: str, new_password: str) -> Call[None]:
    body = {"current_password": current_password, "new_password": new_password}
    return Call("POST", "/v1/auth/password", _nothing, body=body, bearer=access_token)


def verify_email(token: str) -> Call[None]:
    return Call("POST", "/v1/auth/email/verify", _nothing, body={"token": token})


def resend_verification(access_token: str) -> Call[None]:
    return Call("POST", "/v1/auth/email/verify/resend", _nothing, bearer=access_token)
