"""Every call of the client against a real IdentSphere, with `Client` and `AsyncClient` (the `client` fixture
is each in turn): the typed results, and the refusals with the catalog's codes."""

from __future__ import annotations

import functools
import http.server
import inspect
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, Callable

import httpx
import pytest

from identsphere import (
    AsyncClient,
    Client,
    IdentSphereError,
    MfaRequired,
    SessionInfo,
    TokenResponse,
)
from support.server import PASSWORD, Server, free_port
from support.totp import Authenticator
from support.users import enroll, log_in, new_email, sign_up

NEW_PASSWORD = "a brand new passphrase"


def refused(call: Callable[[], object], status: int, code: str, kind: str) -> IdentSphereError:
    """Runs a call that must be refused with this status, code and type; the error, for more checks."""
    with pytest.raises(IdentSphereError) as caught:
        call()
    error = caught.value
    assert (error.status, error.code, error.type) == (status, code, kind), repr(error)
    assert error.message
    assert error.request_id, "every answer carries X-Request-Id"
    return error


def test_register_login_and_session_give_typed_results_without_secrets_in_their_repr(client: Client) -> None:
    email = new_email()
    registered = client.register(email, PASSWORD, display_name="Ada Lovelace")
    assert isinstance(registered, TokenResponse)
    assert (registered.token_type, registered.expires_in) == ("Bearer", 900)
    assert (registered.user.email, registered.user.display_name, registered.user.email_verified) == (
        email,
        "Ada Lovelace",
        False,
    )
    assert registered.user.created_at.tzinfo == timezone.utc
    assert abs((datetime.now(timezone.utc) - registered.user.created_at).total_seconds()) < 60
    assert (registered.session.aal, registered.session.auth_method) == ("aal1", "password")
    assert registered.session.expires_at > registered.user.created_at
    assert registered.pending_organization is None
    for secret in (registered.access_token, registered.refresh_token):
        assert secret not in repr(registered)

    signed_in = client.login(email.upper(), PASSWORD)
    assert isinstance(signed_in, TokenResponse), "emails compare case-insensitively"
    assert signed_in.session.id != registered.session.id, "a sign-in is a new session"
    assert signed_in.session.organization_id == registered.session.organization_id

    info = client.session(signed_in.access_token)
    assert isinstance(info, SessionInfo)
    assert (info.user.id, info.session.id) == (registered.user.id, signed_in.session.id)
    assert (info.organization.id, info.organization.role) == (registered.session.organization_id, "owner")
    assert (info.factors, info.recovery_codes_left) == ((), 0)


def test_registration_and_login_refusals_carry_the_catalog_codes(client: Client, server: Server) -> None:
    email, _ = sign_up(client)
    _, other = sign_up(client)
    refused(lambda: client.register(email, PASSWORD), 409, "email_taken", "conflict_error")
    refused(lambda: client.register("not-an-email", PASSWORD), 422, "invalid_email", "invalid_request_error")
    weak = refused(
        lambda: client.register(new_email(), "password"), 422, "weak_password", "invalid_request_error"
    )
    assert weak.param == "password"
    blank = refused(
        lambda: client.register(new_email(), PASSWORD, organization=" "),
        400,
        "invalid_request",
        "invalid_request_error",
    )
    assert blank.param == "organization"
    refused(
        lambda: client.login(email, "wrong horse battery staple"),
        401,
        "invalid_credentials",
        "authentication_error",
    )
    refused(
        lambda: client.login(email, PASSWORD, organization="no-such-organization"),
        404,
        "organization_not_found",
        "invalid_request_error",
    )
    refused(
        lambda: client.login(email, PASSWORD, organization=other.session.organization_id),
        403,
        "not_a_member",
        "permission_error",
    )


def test_refresh_rotates_and_a_spent_refresh_token_is_reuse_that_ends_the_session(client: Client) -> None:
    _, tokens = sign_up(client)
    rotated = client.refresh(tokens.refresh_token)
    assert rotated.session.id == tokens.session.id, "the same session family"
    assert rotated.refresh_token != tokens.refresh_token
    # The suite's server has no grace window: the spent token coming back is theft.
    refused(lambda: client.refresh(tokens.refresh_token), 401, "refresh_token_reused", "authentication_error")
    refused(lambda: client.refresh(rotated.refresh_token), 401, "token_revoked", "authentication_error")
    refused(lambda: client.session(rotated.access_token), 401, "token_revoked", "authentication_error")
    refused(lambda: client.refresh("not-a-token"), 401, "token_invalid", "authentication_error")


def test_refresh_with_an_organization_switches_the_session_and_checks_its_policy(
    client: Client, server: Server
) -> None:
    email, tokens = sign_up(client)
    _, stranger = sign_up(client)
    acme = server.api("POST", "/v1/organizations", tokens.access_token, {"name": "Acme"})

    switched = client.refresh(tokens.refresh_token, organization=acme["slug"])
    assert switched.session.organization_id == acme["id"]
    assert (switched.session.id, switched.session.aal) == (tokens.session.id, "aal1"), "no new sign-in"
    info = client.session(switched.access_token)
    assert (info.organization.slug, info.organization.role) == (acme["slug"], "owner")

    refused(
        lambda: client.refresh(switched.refresh_token, organization=stranger.session.organization_id),
        403,
        "not_a_member",
        "permission_error",
    )
    refused(
        lambda: client.refresh(switched.refresh_token, organization="no-such-organization"),
        404,
        "organization_not_found",
        "invalid_request_error",
    )

    # An organization that requires a second factor admits no aal1 session.
    server.api(
        "PATCH", f"/v1/organizations/{acme['id']}", switched.access_token, {"policy": {"mfa_required": True}}
    )
    # Signed in to the personal organization (without `organization`, login picks the last one used).
    second = log_in(client, email, organization=tokens.session.organization_id)
    refused(
        lambda: client.refresh(second.refresh_token, organization=acme["id"]),
        403,
        "insufficient_aal",
        "permission_error",
    )

    # A disabled organization's sessions stop refreshing.
    beta = server.api("POST", "/v1/organizations", second.access_token, {"name": "Beta"})
    in_beta = client.refresh(second.refresh_token, organization=beta["id"])
    server.api("PATCH", f"/v1/organizations/{beta['id']}", in_beta.access_token, {"disabled": True})
    refused(lambda: client.refresh(in_beta.refresh_token), 403, "account_disabled", "permission_error")


def test_logout_ends_this_session_the_others_or_all_of_them(client: Client) -> None:
    email, first = sign_up(client)
    second, third = log_in(client, email), log_in(client, email)

    client.logout(first.access_token, scope="others")
    assert client.session(first.access_token).session.id == first.session.id, "this session stays"
    for ended in (second.access_token, third.access_token):
        refused(functools.partial(client.session, ended), 401, "token_revoked", "authentication_error")

    client.logout(first.access_token)
    refused(lambda: client.session(first.access_token), 401, "token_revoked", "authentication_error")

    fourth, fifth = log_in(client, email), log_in(client, email)
    # With only the refresh token (an expired access token), and every session of the user.
    client.logout(refresh_token=fourth.refresh_token, scope="global")
    refused(lambda: client.session(fifth.access_token), 401, "token_revoked", "authentication_error")

    bad_scope = refused(
        lambda: client.logout(fifth.access_token, scope="everything"),  # type: ignore[arg-type]
        400,
        "invalid_request",
        "invalid_request_error",
    )
    assert bad_scope.param == "scope"
    refused(client.logout, 401, "token_missing", "authentication_error")


def test_session_refuses_a_missing_malformed_or_expired_token(
    client: Client, make_client: Callable[[str], Client], start_server: Callable[..., Server]
) -> None:
    sign_up(client)
    # The client keeps no cookie from the sign-in above: no token is no token.
    refused(lambda: client.session(""), 401, "token_missing", "authentication_error")
    refused(lambda: client.session("not-a-jwt"), 401, "token_invalid", "authentication_error")

    short = make_client(start_server({"IDENTSPHERE_ACCESS_TOKEN_TTL": "1"}).base_url)
    _, tokens = sign_up(short)
    time.sleep(2)
    refused(lambda: short.session(tokens.access_token), 401, "token_expired", "authentication_error")


def test_mfa_sign_in_with_a_totp_code_or_a_recovery_code(client: Client) -> None:
    email, tokens = sign_up(client)
    device, confirmation = enroll(client, tokens)
    raised = confirmation.tokens
    assert (raised.session.id, raised.session.aal) == (tokens.session.id, "aal2"), "the same session, raised"
    assert len(confirmation.recovery_codes) == 10
    assert confirmation.recovery_codes[0] not in repr(confirmation)
    info = client.session(raised.access_token)
    assert ([f.type for f in info.factors], info.recovery_codes_left) == (["totp"], 10)
    refused(
        lambda: client.enroll_totp(access_token=raised.access_token),
        409,
        "mfa_already_enrolled",
        "conflict_error",
    )

    step = client.login(email, PASSWORD)
    assert isinstance(step, MfaRequired), "a second factor is a normal outcome, not an error"
    assert (step.factors, step.enrollment_required) == (("totp",), False)
    assert step.mfa_token not in repr(step)
    refused(
        lambda: client.verify_mfa("000000", mfa_token=step.mfa_token),
        401,
        "mfa_invalid_code",
        "authentication_error",
    )
    signed_in = client.verify_mfa(device.next_code(), mfa_token=step.mfa_token)
    assert (signed_in.session.aal, signed_in.user.email) == ("aal2", email)
    refused(
        lambda: client.verify_mfa(device.next_code(), mfa_token=step.mfa_token),
        401,
        "token_invalid",
        "authentication_error",
    )

    again = client.login(email, PASSWORD)
    assert isinstance(again, MfaRequired)
    recovered = client.verify_mfa(confirmation.recovery_codes[0].lower(), mfa_token=again.mfa_token)
    assert recovered.session.aal == "aal2"
    assert client.session(recovered.access_token).recovery_codes_left == 9


def test_step_up_changes_what_an_aal1_session_may_do(client: Client) -> None:
    email, first = sign_up(client)
    older = log_in(client, email)
    device, _ = enroll(client, first)
    # A session signed in before the factor was enrolled stays aal1: it may not change credentials.
    refused(
        lambda: client.change_password(older.access_token, PASSWORD, NEW_PASSWORD),
        403,
        "insufficient_aal",
        "permission_error",
    )
    stepped = client.verify_mfa(
        device.next_code(), access_token=older.access_token, refresh_token=older.refresh_token
    )
    assert (stepped.session.id, stepped.session.aal) == (older.session.id, "aal2")

    refused(
        lambda: client.change_password(stepped.access_token, "wrong horse battery staple", NEW_PASSWORD),
        401,
        "invalid_credentials",
        "authentication_error",
    )
    client.change_password(stepped.access_token, PASSWORD, NEW_PASSWORD)
    assert isinstance(client.login(email, NEW_PASSWORD), MfaRequired)

    client.remove_totp(stepped.access_token)
    assert client.session(stepped.access_token).factors == ()
    refused(lambda: client.remove_totp(stepped.access_token), 409, "mfa_not_enrolled", "conflict_error")
    assert isinstance(client.login(email, NEW_PASSWORD), TokenResponse), "no second factor any more"


def test_an_organization_that_requires_a_second_factor_enrolls_at_sign_in(
    client: Client, server: Server
) -> None:
    email, tokens = sign_up(client)
    secure = server.api("POST", "/v1/organizations", tokens.access_token, {"name": "Secure"})
    inside = client.refresh(tokens.refresh_token, organization=secure["id"])
    server.api(
        "PATCH", f"/v1/organizations/{secure['id']}", inside.access_token, {"policy": {"mfa_required": True}}
    )

    step = client.login(email, PASSWORD, organization=secure["slug"])
    assert isinstance(step, MfaRequired)
    assert (step.enrollment_required, step.factors) == (True, ())
    enrollment = client.enroll_totp(mfa_token=step.mfa_token)
    assert enrollment.otpauth_uri.startswith("otpauth://totp/")
    assert enrollment.qr_svg.startswith("data:image/svg+xml;base64,")
    assert enrollment.secret not in repr(enrollment)
    confirmed = client.confirm_totp(Authenticator(enrollment.secret).next_code(), mfa_token=step.mfa_token)
    assert (confirmed.tokens.session.organization_id, confirmed.tokens.session.aal) == (secure["id"], "aal2")
    assert len(confirmed.recovery_codes) == 10


def test_email_verification_and_password_reset_by_the_mailed_links(client: Client, server: Server) -> None:
    email, tokens = sign_up(client)
    link = server.link_token(email, "verify-email")
    client.verify_email(link)
    assert client.session(tokens.access_token).user.email_verified
    refused(lambda: client.verify_email(link), 400, "link_invalid", "invalid_request_error")
    client.resend_verification(tokens.access_token)

    asked = time.time() - 1
    client.forgot_password(email)
    client.forgot_password(new_email())  # the same answer for an email without an account
    refused(lambda: client.forgot_password("not-an-email"), 422, "invalid_email", "invalid_request_error")
    reset = server.link_token(email, "reset-password", after=asked)
    refused(lambda: client.reset_password(reset, "password"), 422, "weak_password", "invalid_request_error")
    client.reset_password(reset, NEW_PASSWORD)
    refused(lambda: client.session(tokens.access_token), 401, "token_revoked", "authentication_error")
    assert isinstance(client.login(email, NEW_PASSWORD), TokenResponse)
    refused(lambda: client.reset_password(reset, NEW_PASSWORD), 400, "link_invalid", "invalid_request_error")


def test_rate_limited_and_reauthentication_required(
    make_client: Callable[[str], Client], start_server: Callable[..., Server]
) -> None:
    strict = start_server(
        {"IDENTSPHERE_RATE_LIMIT_SIGNIN_IP": "2/60", "IDENTSPHERE_REAUTHENTICATION_WINDOW": "1"}
    )
    client = make_client(strict.base_url)
    email, tokens = sign_up(client)
    time.sleep(2)  # the sign-up is no longer recent
    refused(
        lambda: client.enroll_totp(access_token=tokens.access_token),
        403,
        "reauthentication_required",
        "permission_error",
    )
    assert client.enroll_totp(access_token=tokens.access_token, password=PASSWORD).secret

    for _ in range(2):
        client.login(email, PASSWORD)
    limited = refused(lambda: client.login(email, PASSWORD), 429, "rate_limited", "rate_limit_error")
    assert limited.retry_after is not None
    assert 0 < limited.retry_after <= 60


class _Answer:
    """A tiny HTTP server that is not IdentSphere: it answers every request with one fixed response and keeps
    the request headers it saw."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        seen: list[dict[str, str]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.seen = seen
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def answering() -> Iterator[Callable[[int, str, bytes], _Answer]]:
    made: list[_Answer] = []

    def make(status: int, content_type: str, body: bytes) -> _Answer:
        made.append(_Answer(status, content_type, body))
        return made[-1]

    yield make
    for each in made:
        each.close()


def test_no_answer_or_an_answer_without_the_envelope_is_a_client_side_error(
    make_client: Callable[[str], Client], answering: Callable[[int, str, bytes], _Answer]
) -> None:
    with pytest.raises(IdentSphereError) as caught:
        make_client(f"http://127.0.0.1:{free_port()}").session("token")
    assert (caught.value.status, caught.value.code, caught.value.type) == (0, "network_error", "client_error")

    proxy = answering(502, "text/html", b"<h1>Bad Gateway</h1>")
    with pytest.raises(IdentSphereError) as caught:
        make_client(proxy.url).session("token")
    assert (caught.value.status, caught.value.code) == (502, "unexpected_response")
    assert proxy.seen[0]["user-agent"].startswith("identsphere-python/0.1.0 ")
    assert proxy.seen[0]["authorization"] == "Bearer token"

    not_json = answering(200, "text/plain", b"hello")
    with pytest.raises(IdentSphereError) as caught:
        make_client(not_json.url).session("token")
    assert (caught.value.status, caught.value.code) == (0, "unexpected_response")


def test_an_http_client_of_yours_is_used_never_closed_and_sends_no_cookie(server: Server) -> None:
    mine = httpx.Client(timeout=5)
    with Client(server.base_url, http_client=mine) as client:
        sign_up(client)
        assert mine.cookies.get("identsphere_at"), "your client's jar keeps what it keeps"
        refused(lambda: client.session(""), 401, "token_missing", "authentication_error")
    assert not mine.is_closed
    assert mine.get(f"{server.base_url}/healthz").status_code == 200
    mine.close()


def test_client_and_async_client_have_the_same_methods() -> None:
    def methods(kind: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(kind, inspect.isfunction)
            if not name.startswith("_") and name not in ("close", "aclose")
        }

    sync, asynchronous = methods(Client), methods(AsyncClient)
    assert sync.keys() == asynchronous.keys()
    assert len(sync) == 14
    for name, signature in sync.items():
        assert asynchronous[name].parameters == signature.parameters, name
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), name
