"""The revocation feed, polled by a thread (`Verifier`) or a task (`AsyncVerifier`): logout and refresh-token
reuse reach the verifier within the poll interval plus a second, a fresh verifier knows the revocations
before it admits anyone, and an outage leaves it serving with what it knows."""

from __future__ import annotations

import logging
import time
from typing import Callable

import pytest

from conftest import MakeVerifier
from identsphere import Client, IdentSphereError, Verifier
from identsphere._revocations import Feed, RevocationList
from support.server import PLATFORM_KEY, Server
from support.users import sign_up

#: The poll interval the tests configure.
POLL = 0.3


def refused_after(verifier: Verifier, token: str) -> float:
    """Seconds until `verifier` refuses `token` as revoked (it must pass until then)."""
    started = time.monotonic()
    while True:
        try:
            verifier.verify(token)
        except IdentSphereError as error:
            refusal = error
            break
        assert time.monotonic() - started < 5, "the revoked token was never refused"
        time.sleep(0.02)
    assert refusal.code == "token_revoked", repr(refusal)
    return time.monotonic() - started


def test_after_logout_the_token_is_refused_within_the_poll_interval_plus_a_second(
    client: Client, server: Server, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(server.base_url, platform_api_key=PLATFORM_KEY, revocation_poll_interval=POLL)
    _, tokens = sign_up(client)
    _, bystander = sign_up(client)
    verifier.verify(tokens.access_token)

    client.logout(tokens.access_token)
    assert refused_after(verifier, tokens.access_token) <= POLL + 1
    assert verifier.verify(bystander.access_token).sub == bystander.user.id, "other sessions are untouched"
    status = verifier.revocation_feed
    assert status is not None
    assert status.synced
    assert status.consecutive_failures == 0
    assert status.entries >= 1


def test_refresh_token_reuse_revokes_the_family_within_the_poll_interval_plus_a_second(
    client: Client, server: Server, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(server.base_url, platform_api_key=PLATFORM_KEY, revocation_poll_interval=POLL)
    _, tokens = sign_up(client)
    successor = client.refresh(tokens.refresh_token)
    verifier.verify(successor.access_token)

    with pytest.raises(IdentSphereError, match="refresh_token_reused"):
        client.refresh(tokens.refresh_token)
    assert refused_after(verifier, successor.access_token) <= POLL + 1
    with pytest.raises(IdentSphereError, match="token_revoked"):
        verifier.verify(tokens.access_token)


def test_a_new_verifier_knows_the_revocations_before_it_admits_anyone(
    client: Client, server: Server, make_verifier: MakeVerifier
) -> None:
    _, tokens = sign_up(client)
    client.logout(tokens.access_token)
    # A long poll interval: only the first poll, which the first `verify` waits for, can know the logout.
    verifier = make_verifier(server.base_url, platform_api_key=PLATFORM_KEY, revocation_poll_interval=60)
    with pytest.raises(IdentSphereError, match="token_revoked"):
        verifier.verify(tokens.access_token)


def test_with_identsphere_down_valid_tokens_pass_and_known_revocations_hold(
    start_server: Callable[..., Server], make_verifier: MakeVerifier
) -> None:
    server = start_server()
    verifier = make_verifier(server.base_url, platform_api_key=PLATFORM_KEY, revocation_poll_interval=POLL)
    with Client(server.base_url) as client:
        _, revoked = sign_up(client)
        _, valid = sign_up(client)
        verifier.verify(valid.access_token)
        client.logout(revoked.access_token)
    refused_after(verifier, revoked.access_token)

    server.stop()
    deadline = time.monotonic() + 5
    while (verifier.revocation_feed or pytest.fail("the feed is on")).consecutive_failures < 2:
        assert time.monotonic() < deadline, "the poller never noticed the outage"
        time.sleep(POLL / 3)
    assert verifier.verify(valid.access_token).sub == valid.user.id, "served with the cached keys"
    with pytest.raises(IdentSphereError, match="token_revoked"):
        verifier.verify(revoked.access_token)
    status = verifier.revocation_feed
    assert status is not None
    assert status.synced
    assert status.entries >= 1


def test_without_a_platform_key_the_feed_is_off_and_says_so(
    client: Client, server: Server, make_verifier: MakeVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="identsphere"):
        verifier = make_verifier(server.base_url)
    assert "the revocation feed is off" in caplog.text
    assert verifier.revocation_feed is None
    _, tokens = sign_up(client)
    client.logout(tokens.access_token)
    assert verifier.verify(tokens.access_token).sub == tokens.user.id, "accepted until it expires"


def test_a_wrong_platform_key_is_a_failing_feed(
    server: Server, make_verifier: MakeVerifier, client: Client
) -> None:
    verifier = make_verifier(server.base_url, platform_api_key="not-the-key", revocation_poll_interval=POLL)
    verifier.verify(sign_up(client)[1].access_token)
    status = verifier.revocation_feed
    assert status is not None
    assert (status.synced, status.consecutive_failures) == (False, 1)


def test_entries_are_kept_until_their_tokens_have_expired_and_unknown_kinds_are_ignored() -> None:
    revocations = RevocationList()
    revocations.apply(
        [
            {"kind": "sid", "id": "s", "expires_at": 1_900},
            {"kind": "jti", "id": "j", "expires_at": 1_500},
            {"kind": "future-kind", "id": "x", "expires_at": 9_999},
        ],
        now=1_000,
    )
    assert revocations.is_revoked(jti=None, sid="s", now=1_000)
    assert revocations.is_revoked(jti="j", sid="other", now=1_000)
    assert not revocations.is_revoked(jti="x", sid="x", now=1_000)
    assert revocations.status.entries == 2

    revocations.apply([], now=1_500)
    assert not revocations.is_revoked(jti="j", sid=None, now=1_500), "its tokens have all expired"
    assert revocations.status.entries == 1


def test_a_cursor_the_server_no_longer_knows_starts_the_feed_again() -> None:
    feed, revocations = Feed("http://auth.example", "key"), RevocationList()
    page = b'{"revocations": [{"kind": "jti", "id": "j", "expires_at": 2000}], "cursor": "17-0"}'
    assert feed.read_page(200, page, revocations, now=1_000) is False
    assert feed.request()[0] == {"limit": "1000", "after": "17-0"}
    assert feed.read_page(400, b"{}", revocations, now=1_000) is True, "read again, from the start"
    assert feed.request()[0] == {"limit": "1000"}
    assert "key" not in repr(feed)
