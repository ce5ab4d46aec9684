"""`Client` and `AsyncClient`: the REST API, typed, for servers that act for their users.

Both have the same methods with the same arguments; `AsyncClient`'s are coroutines. What each call sends
and how its answer reads is written once, in `_api`; these classes only carry the requests. They hold no
tokens: each call takes the ones it needs, so one client serves every user of the process. A call is sent
once (httpx retries nothing, and neither does the SDK: signing in or refreshing twice is not harmless).
"""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

import httpx

from identsphere import _api
from identsphere.models import (
    LogoutScope,
    SessionInfo,
    SignInResult,
    TokenResponse,
    TotpConfirmation,
    TotpEnrollment,
)

T = TypeVar("T")

#: Seconds to open a connection to IdentSphere, and for each phase of a call after it.
CONNECT_TIMEOUT = 3.0
TIMEOUT = 10.0


class Client:
    """The IdentSphere API at `base_url` (e.g. `https://auth.example.com`), over a blocking httpx client.

    Every refusal raises `IdentSphereError` with the server's `code`; `login` and `register` return
    `MfaRequired` (not an exception) when a second factor is due. Pass `http_client` to use your own
    `httpx.Client` (proxies, TLS settings, a transport); it is then yours to close. Safe to share between
    threads.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url = _api.base(base_url)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            timeout=_api.timeout(timeout, connect_timeout), cookies=_api.no_cookies()
        )

    def close(self) -> None:
        """Closes the connections (not those of an `http_client` you passed)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _send(self, call: _api.Call[T]) -> T:
        try:
            response = self._http.send(call.request(self._http, self.base_url))
        except httpx.TransportError as error:
            raise _api.network_error(error) from error
        return call.outcome(response)

    def register(
        self,
        email: str,
        password: str,
        *,
        display_name: str | None = None,
        organization: str | None = None,
        invitation: str | None = None,
    ) -> SignInResult:
        """Creates an account and signs it in (`POST /v1/auth/register`). Without `organization` (id or slug)
        or `invitation`, in a new personal organization. `MfaRequired` when that organization requires a
        second factor."""
        return self._send(_api.register(email, password, display_name, organization, invitation))

    def login(self, email: str, password: str, *, organization: str | None = None) -> SignInResult:
        """Signs in (`POST /v1/auth/login`): the tokens, or `MfaRequired` when a second factor is due. Into
        `organization` (id or slug), or the one the user used last."""
        return self._send(_api.login(email, password, organization))

    def refresh(self, refresh_token: str, *, organization: str | None = None) -> TokenResponse:
        """A new token pair for the session (`POST /v1/auth/refresh`); the refresh token given is spent. With
        `organization`, the session switches to it without signing in again (same `sid`, `aal`)."""
        return self._send(_api.refresh(refresh_token, organization))

    def logout(
        self,
        access_token: str | None = None,
        *,
        refresh_token: str | None = None,
        scope: LogoutScope = "local",
    ) -> None:
        """Ends sessions (`POST /v1/auth/logout`): this one (`local`), the user's others (`others`) or all
        (`global`). Authenticated by the access token or, once it has expired, the refresh token."""
        return self._send(_api.logout(access_token, refresh_token, scope))

    def session(self, access_token: str) -> SessionInfo:
        """The user, session, organization and second factors of an access token (`GET /v1/auth/session`),
        as IdentSphere sees them now: a revoked session is refused at once."""
        return self._send(_api.session(access_token))

    def verify_mfa(
        self,
        code: str,
        *,
        mfa_token: str | None = None,
        access_token: str | None = None,
        refresh_token: str | None = None,
    ) -> TokenResponse:
        """A second factor (`POST /v1/auth/mfa/verify`): a TOTP code or a recovery code. With the `mfa_token`
        of `MfaRequired`, completes that sign-in; with a session's `access_token` and `refresh_token`, steps
        it up to `aal2` (same session id, a new pair)."""
        return self._send(_api.verify_mfa(code, mfa_token, access_token, refresh_token))

    def enroll_totp(
        self,
        *,
        access_token: str | None = None,
        mfa_token: str | None = None,
        password: str | None = None,
    ) -> TotpEnrollment:
        """Starts a TOTP enrollment (`POST /v1/auth/mfa/totp`) for the user of `access_token` (with `password`
        when the sign-in is not recent) or of a sign-in's `mfa_token` (`enrollment_required`)."""
        return self._send(_api.enroll_totp(access_token, mfa_token, password))

    def confirm_totp(
        self,
        code: str,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        mfa_token: str | None = None,
    ) -> TotpConfirmation:
        """Turns TOTP on with its first code (`POST /v1/auth/mfa/totp/confirm`): the session, now `aal2`, and
        the recovery codes. With a session's `access_token` and `refresh_token`, or a sign-in's `mfa_token`
        (which completes that sign-in)."""
        return self._send(_api.confirm_totp(code, access_token, refresh_token, mfa_token))

    def remove_totp(self, access_token: str, *, password: str | None = None) -> None:
        """Removes TOTP and the recovery codes (`DELETE /v1/auth/mfa/totp`): needs an `aal2` session of a
        recent sign-in, or `password`."""
        return self._send(_api.remove_totp(access_token, password))

    def forgot_password(self, email: str) -> None:
        """Mails a reset link if the email has an account (`POST /v1/auth/password/forgot`); the answer is
        the same either way."""
        return self._send(_api.forgot_password(email))

    def reset_password(self, token: str, password: str) -> None:
        """Sets a new password with a reset link's `token` (`POST /v1/auth/password/reset`); every session of
        the user ends."""
        return self._send(_api.reset_password(token, password))

    def change_password(self, access_token: str, current_password: str, new_password: str) -> None:
        """Changes the password (`POST /v1/auth/password`): `aal2` when the user has a second factor. The
        user's other sessions end."""
        return self._send(_api.change_password(access_token, current_password, new_password))

    def verify_email(self, token: str) -> None:
        """Marks the address verified with a verification link's `token` (`POST /v1/auth/email/verify`)."""
        return self._send(_api.verify_email(token))

    def resend_verification(self, access_token: str) -> None:
        """Mails a new verification link unless the address is verified (`POST
        /v1/auth/email/verify/resend`)."""
        return self._send(_api.resend_verification(access_token))


class AsyncClient:
    """`Client` for asyncio: the same methods, as coroutines, over an `httpx.AsyncClient`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = _api.base(base_url)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=_api.timeout(timeout, connect_timeout), cookies=_api.no_cookies()
        )

    async def aclose(self) -> None:
        """Closes the connections (not those of an `http_client` you passed)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _send(self, call: _api.Call[T]) -> T:
        try:
            response = await self._http.send(call.request(self._http, self.base_url))
        except httpx.TransportError as error:
            raise _api.network_error(error) from error
        return call.outcome(response)

    async def register(
        self,
        email: str,
        password: str,
        *,
        display_name: str | None = None,
        organization: str | None = None,
        invitation: str | None = None,
    ) -> SignInResult:
        """`Client.register`."""
        return await self._send(_api.register(email, password, display_name, organization, invitation))

    async def login(self, email: str, password: str, *, organization: str | None = None) -> SignInResult:
        """`Client.login`."""
        return await self._send(_api.login(email, password, organization))

    async def refresh(self, refresh_token: str, *, organization: str | None = None) -> TokenResponse:
        """`Client.refresh`."""
        return await self._send(_api.refresh(refresh_token, organization))

    async def logout(
        self,
        access_token: str | None = None,
        *,
        refresh_token: str | None = None,
        scope: LogoutScope = "local",
    ) -> None:
        """`Client.logout`."""
        return await self._send(_api.logout(access_token, refresh_token, scope))

    async def session(self, access_token: str) -> SessionInfo:
        """`Client.session`."""
        return await self._send(_api.session(access_token))

    async def verify_mfa(
        self,
        code: str,
        *,
        mfa_token: str | None = None,
        access_token: str | None = None,
        refresh_token: str | None = None,
    ) -> TokenResponse:
        """`Client.verify_mfa`."""
        return await self._send(_api.verify_mfa(code, mfa_token, access_token, refresh_token))

    async def enroll_totp(
        self,
        *,
        access_token: str | None = None,
        mfa_token: str | None = None,
        password: str | None = None,
    ) -> TotpEnrollment:
        """`Client.enroll_totp`."""
        return await self._send(_api.enroll_totp(access_token, mfa_token, password))

    async def confirm_totp(
        self,
        code: str,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        mfa_token: str | None = None,
    ) -> TotpConfirmation:
        """`Client.confirm_totp`."""
        return await self._send(_api.confirm_totp(code, access_token, refresh_token, mfa_token))

    async def remove_totp(self, access_token: str, *, password: str | None = None) -> None:
        """`Client.remove_totp`."""
        return await self._send(_api.remove_totp(access_token, password))

    async def forgot_password(self, email: str) -> None:
        """`Client.forgot_password`."""
        return await self._send(_api.forgot_password(email))

    async def reset_password(self, token: str, password: str) -> None:
        """`Client.reset_password`."""
        return await self._send(_api.reset_password(token, password))

    async def change_password(self, access_token: str, current_password: str, new_password: str) -> None:
        """`Client.change_password`."""
        return await self._send(_api.change_password(access_token, current_password, new_password))

    async def verify_email(self, token: str) -> None:
        """`Client.verify_email`."""
        return await self._send(_api.verify_email(token))

    async def resend_verification(self, access_token: str) -> None:
        """`Client.resend_verification`."""
        return await self._send(_api.resend_verification(access_token))
