"""Local verification with `Verifier` and `AsyncVerifier` (the `make_verifier` fixture is each in turn),
against tokens of a real IdentSphere and forgeries of them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest

from conftest import MakeVerifier
from identsphere import AsyncVerifier, Client, IdentSphereError, MfaRequired, Verifier
from support.blocking import LoopThread
from support.server import PASSWORD, Server, free_port
from support.tokens import b64, hs256, part, public_pem, rs256
from support.users import enroll, sign_up


def refused(verify: Callable[[str], object], token: str, code: str = "token_invalid") -> None:
    with pytest.raises(IdentSphereError) as caught:
        verify(token)
    assert caught.value.code == code, f"{caught.value!r} for {token[:60]}…"


def test_a_valid_token_gives_every_claim_typed(
    client: Client, server: Server, make_verifier: MakeVerifier
) -> None:
    email, tokens = sign_up(client)
    claims = make_verifier(server.base_url).verify(tokens.access_token)
    assert (claims.sub, claims.org, claims.sid) == (
        tokens.user.id,
        tokens.session.organization_id,
        tokens.session.id,
    )
    assert (claims.iss, claims.typ, claims.email) == (server.base_url, "access", email)
    assert (claims.aal, claims.auth_method, claims.is_aal2) == ("aal1", "password", False)
    assert claims.exp - claims.iat == 900
    assert claims.auth_time == tokens.session.auth_time
    assert uuid.UUID(claims.jti or "")


def test_forged_and_foreign_tokens_are_token_invalid(
    client: Client, server: Server, make_verifier: MakeVerifier, start_server: Callable[..., Server]
) -> None:
    email, tokens = sign_up(client)
    verify = make_verifier(server.base_url).verify
    token = tokens.access_token
    header, claims = part(token, 0), part(token, 1)
    signature = token.rsplit(".", 1)[1]
    jwk = next(
        k for k in server.http.get("/.well-known/jwks.json").json()["keys"] if k["kid"] == header["kid"]
    )
    verify(token)

    def unsigned(header: Any, claims: Any, signature: str = "") -> str:
        return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{signature}"

    forgeries = {
        "another key under our kid": rs256(header, claims),
        "alg none": unsigned({**header, "alg": "none"}, claims),
        "HS256 keyed with our public key": hs256({**header, "alg": "HS256"}, claims, public_pem(jwk)),
        "another user in a genuine signature": unsigned(
            header, {**claims, "sub": str(uuid.uuid4())}, signature
        ),
        "no typ in the header": unsigned({k: v for k, v in header.items() if k != "typ"}, claims, signature),
        "no kid": unsigned({k: v for k, v in header.items() if k != "kid"}, claims, signature),
        "oversized": unsigned(header, {**claims, "pad": "x" * 9000}, signature),
        "not a JWT": "not-a-jwt",
        "a refresh token": tokens.refresh_token,
    }
    for what, forged in forgeries.items():
        with pytest.raises(IdentSphereError) as caught:
            verify(forged)
        assert caught.value.code == "token_invalid", what

    # An mfa token is signed by IdentSphere's own key: only its `typ` tells it from an access token.
    enroll(client, tokens)
    step = client.login(email, PASSWORD)
    assert isinstance(step, MfaRequired)
    assert part(step.mfa_token, 1)["typ"] == "mfa"
    refused(verify, step.mfa_token)

    refused(make_verifier(server.base_url, issuer="https://someone-else.example").verify, token)
    other = start_server()
    foreign = Client(other.base_url)
    refused(verify, sign_up(foreign)[1].access_token)
    foreign.close()


def test_an_expired_token_is_token_expired_unless_within_the_leeway(
    make_client: Callable[[str], Client], make_verifier: MakeVerifier, start_server: Callable[..., Server]
) -> None:
    # Five seconds: a loaded machine may take more than one between the sign-up and the first check.
    short = start_server({"IDENTSPHERE_ACCESS_TOKEN_TTL": "5"})
    _, tokens = sign_up(make_client(short.base_url))
    strict, lenient = make_verifier(short.base_url), make_verifier(short.base_url, leeway=30)
    claims = strict.verify(tokens.access_token)
    assert claims.sub == tokens.user.id
    time.sleep(max(0.0, claims.exp - time.time()) + 1.1)
    refused(strict.verify, tokens.access_token, "token_expired")
    assert lenient.verify(tokens.access_token).sub == tokens.user.id


def test_without_any_key_the_answer_is_service_unavailable(make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(f"http://127.0.0.1:{free_port()}", timeout=1)
    forged = rs256({"alg": "RS256", "typ": "JWT", "kid": "k"}, {"sub": "s"})
    with pytest.raises(IdentSphereError) as caught:
        verifier.verify(forged)
    assert (caught.value.status, caught.value.code) == (503, "service_unavailable")


def _forged_kids(claims: Any, count: int) -> list[str]:
    """Tokens under kids IdentSphere never published; the signature is never reached."""
    headers = ({"alg": "RS256", "typ": "JWT", "kid": str(uuid.uuid4())} for _ in range(count))
    return [
        f"{b64(json.dumps(h).encode())}.{b64(json.dumps(claims).encode())}.{b64(b'x' * 256)}" for h in headers
    ]


#: What a cold verifier answers to `flood`'s tokens, however many wait at once.
FLOOD_OUTCOMES = ["ok"] * 20 + ["token_invalid"] * 40


@pytest.fixture
def flood(start_server: Callable[..., Server]) -> tuple[Server, list[str]]:
    """A fresh server, and 20 valid tokens with 40 under unknown kids, for a verifier that has no key yet."""
    server = start_server()
    with Client(server.base_url) as client:
        valid = sign_up(client)[1].access_token
    return server, [valid] * 20 + _forged_kids(part(valid, 1), 40)


def test_threads_waiting_for_the_keys_share_one_fetch_and_a_flood_of_unknown_kids_costs_none(
    flood: tuple[Server, list[str]],
) -> None:
    server, tokens = flood
    before = server.jwks_served()
    with Verifier(server.base_url) as verifier, ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(_outcome(verifier.verify), tokens)) == FLOOD_OUTCOMES
    assert server.jwks_served() - before == 1, "one fetch in flight, however many threads waited for it"


def test_tasks_waiting_for_the_keys_share_one_fetch_and_a_flood_of_unknown_kids_costs_none(
    flood: tuple[Server, list[str]], loop: LoopThread
) -> None:
    server, tokens = flood
    before = server.jwks_served()

    async def verify_all() -> list[str]:
        async with AsyncVerifier(server.base_url) as verifier:

            async def outcome(token: str) -> str:
                try:
                    await verifier.verify(token)
                except IdentSphereError as error:
                    return error.code
                return "ok"

            return list(await asyncio.gather(*(outcome(t) for t in tokens)))

    assert loop.run(verify_all()) == FLOOD_OUTCOMES
    assert server.jwks_served() - before == 1, "one fetch in flight, however many tasks waited for it"


def test_unknown_kids_refetch_at_most_once_per_interval(
    start_server: Callable[..., Server], make_verifier: MakeVerifier
) -> None:
    server = start_server()
    with Client(server.base_url) as client:
        claims = part(sign_up(client)[1].access_token, 1)
    interval = 1.0
    verify = make_verifier(server.base_url, jwks_refetch_interval=interval).verify
    before = server.jwks_served()
    started = time.monotonic()
    fetches = 0
    # Two and a half intervals of flood, or on a busy machine until the second refetch came (10 s at most).
    while (time.monotonic() - started < 2.5 * interval or fetches < 3) and time.monotonic() - started < 10:
        for forged in _forged_kids(claims, 20):
            refused(verify, forged)
        time.sleep(0.05)
        fetches = server.jwks_served() - before
    elapsed = time.monotonic() - started
    assert 3 <= fetches <= elapsed / interval + 1, f"{fetches} JWKS fetches in {elapsed:.1f} s"


def _outcome(verify: Callable[[str], object]) -> Callable[[str], str]:
    def outcome(token: str) -> str:
        try:
            verify(token)
        except IdentSphereError as error:
            return error.code
        return "ok"

    return outcome
