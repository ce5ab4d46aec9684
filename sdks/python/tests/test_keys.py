"""IdentSphere's keys as the verifiers keep them: an emergency rotation on a live server (Postgres, so that
`identsphere keys rotate` runs beside it), and the cache rules of the JWKS."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Callable

import psycopg
import pytest
import redis

from conftest import MakeVerifier
from identsphere import Client, IdentSphereError
from identsphere._jwks import DEFAULT_MAX_AGE, KeyCache, max_age, rs256_keys
from support.server import Database, Server
from support.tokens import part
from support.users import log_in, sign_up


@pytest.fixture
def database() -> Iterator[Database]:
    """A database of the test's own, dropped after it. Without Postgres and Redis the test is skipped,
    unless IDENTSPHERE_TEST_REQUIRE_POSTGRES is set (CI), where that is a failure."""
    try:
        made = Database()
        redis.Redis.from_url(made.redis_url).ping()
    except (psycopg.OperationalError, redis.ConnectionError) as error:
        if os.environ.get("IDENTSPHERE_TEST_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"Postgres or Redis is not reachable: {error}")
    yield made
    made.drop()


def test_after_an_emergency_rotation_new_tokens_pass_and_old_ones_are_refused_once_the_keys_are_refetched(
    database: Database, start_server: Callable[..., Server], make_verifier: MakeVerifier
) -> None:
    server = start_server(database=database)
    verifier = make_verifier(server.base_url, jwks_refetch_interval=0.5)
    with Client(server.base_url) as client:
        email, old = sign_up(client)
        assert verifier.verify(old.access_token).sub == old.user.id
        old_kid = part(old.access_token, 0)["kid"]

        new_kid = server.cli("keys", "rotate").strip()
        assert new_kid != old_kid
        deadline = time.monotonic() + 10
        while server.published_kids() != [new_kid]:
            assert time.monotonic() < deadline, "the server never published the new key alone"
            time.sleep(0.1)
        # Until the verifier asks again, its cached keys still include the old one (at most their max-age).
        assert verifier.verify(old.access_token).sub == old.user.id

        new = log_in(client, email)
        assert part(new.access_token, 0)["kid"] == new_kid
        before = server.jwks_served()
        assert verifier.verify(new.access_token).sub == new.user.id, "the unknown kid made it refetch"
        assert server.jwks_served() - before == 1
        with pytest.raises(IdentSphereError) as caught:
            verifier.verify(old.access_token)
        assert caught.value.code == "token_invalid", "the old key left the JWKS, and the verifier's cache"
        with pytest.raises(IdentSphereError, match="token_invalid"):
            client.session(old.access_token)


def test_the_keys_are_kept_for_the_max_age_the_server_gives_then_refreshed() -> None:
    cache = KeyCache(min_interval=30)
    assert cache.may_fetch(now=0), "nothing fetched yet"
    cache.attempt(now=0)
    keys = cache.install(_JWKS, "public, max-age=300", now=0)
    assert list(keys.keys) == ["good"]
    assert keys.loaded
    assert not cache.may_fetch(now=29.9), "at most one fetch per interval, whatever its cause"
    assert cache.may_fetch(now=30)
    assert not cache.is_stale(now=299.9)
    assert cache.is_stale(now=300)

    cache.install(_JWKS, "no-store", now=1_000)
    assert not cache.is_stale(now=1_029), "a max-age below the refetch interval counts as the interval"
    cache.install(_JWKS, None, now=2_000)
    assert cache.current.fresh_until == 2_000 + DEFAULT_MAX_AGE
    cache.install(_JWKS, "max-age=99999999", now=0)
    assert cache.current.fresh_until == 24 * 3600, "never longer than a day"


def test_a_body_that_is_no_jwks_is_refused_and_the_keys_in_use_stay() -> None:
    cache = KeyCache(min_interval=30)
    cache.install(_JWKS, None, now=0)
    for body in (b"<html>", b'{"keys": 3}', b"[]"):
        with pytest.raises(ValueError, match="JWKS"):
            cache.install(body, None, now=10)
    assert list(cache.current.keys) == ["good"]


def test_max_age_reads_cache_control() -> None:
    assert max_age("public, max-age=300") == 300
    assert max_age("Max-Age=5") == 5
    assert max_age("no-cache, max-age=60") == 0
    assert max_age("public") is None
    assert max_age("max-age=x") is None
    assert max_age(None) is None


_N = (
    "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGz"
    "HHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_7"
    "5IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1"
    "BzBZI0KQB0GaDWFLN-aEAw3vRw"
)
# One usable key among keys of another algorithm or use, without a kid, of another type, and malformed.
_JWKS = (
    '{"keys": ['
    f'{{"kty": "RSA", "kid": "good", "alg": "RS256", "use": "sig", "n": "{_N}", "e": "AQAB"}},'
    f'{{"kty": "RSA", "kid": "wrong-alg", "alg": "RS512", "use": "sig", "n": "{_N}", "e": "AQAB"}},'
    f'{{"kty": "RSA", "kid": "encryption", "alg": "RS256", "use": "enc", "n": "{_N}", "e": "AQAB"}},'
    f'{{"kty": "RSA", "alg": "RS256", "use": "sig", "n": "{_N}", "e": "AQAB"}},'
    '{"kty": "oct", "kid": "mac", "k": "c2VjcmV0"},'
    '{"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},'
    '{"kty": "RSA", "kid": "mistyped", "n": 5, "e": "AQAB"}'
    "]}"
).encode()


def test_only_rsa_signing_keys_with_a_kid_are_kept() -> None:
    assert list(rs256_keys(_JWKS)) == ["good"]
