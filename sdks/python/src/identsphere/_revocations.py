"""The revocation feed: what IdentSphere has revoked (logouts, refresh-token reuse), read from
`GET /v1/revocations` and kept in memory. No I/O here: the verifiers' pollers (a thread, an asyncio task)
send `Feed.request()` and hand each answer to `Feed.read_page`.

Each entry names a session family (`sid`) or a token (`jti`) and carries the instant by which every token it
covers has expired; it is forgotten then, so the list is as small as the set of revoked-but-unexpired
tokens. Lookups read a mapping that is replaced whole on change, never mutated, so they take no lock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("identsphere")

#: Entries per page asked for (the feed's maximum).
PAGE = 1000
#: Pages read in one poll at most, so a huge backlog cannot starve the interval.
MAX_PAGES = 100


@dataclass(frozen=True)
class FeedStatus:
    """What the verifier knows of the feed, for health checks."""

    #: At least one poll has succeeded.
    synced: bool = False
    #: Polls that failed in a row (0 when the last one succeeded).
    consecutive_failures: int = 0
    #: Revocations held now (sessions and tokens).
    entries: int = 0


class RevocationList:
    """The revocations known so far: `(kind, id)` -> when every token it covers has expired (Unix seconds)."""

    def __init__(self) -> None:
        self._entries: Mapping[tuple[str, str], int] = {}
        self.status = FeedStatus()

    def is_revoked(self, jti: str | None, sid: str | None, now: float) -> bool:
        """Whether the token `jti` or its session `sid` is revoked at `now` (Unix seconds)."""
        entries = self._entries
        return any(
            entries.get((kind, id_), 0) > now for kind, id_ in (("jti", jti), ("sid", sid)) if id_ is not None
        )

    def apply(self, page: list[Any], now: float) -> None:
        """Adds a page of entries and forgets those whose tokens have all expired at `now`."""
        entries = dict(self._entries)
        for entry in page:
            if not isinstance(entry, dict):
                continue
            kind, id_, until = entry.get("kind"), entry.get("id"), entry.get("expires_at")
            # A kind this version does not know is left for a newer SDK.
            if kind in ("jti", "sid") and isinstance(id_, str) and isinstance(until, int):
                entries[(kind, id_)] = max(until, entries.get((kind, id_), until))
        self._entries = {key: until for key, until in entries.items() if until > now}
        self.status = FeedStatus(self.status.synced, self.status.consecutive_failures, len(self._entries))

    def record(self, error: str | None) -> None:
        """The outcome of a poll: logged once when the feed starts failing, once when it recovers."""
        status = self.status
        if error is None:
            if status.consecutive_failures:
                logger.info("the IdentSphere revocation feed is reachable again")
            self.status = FeedStatus(True, 0, status.entries)
            return
        if status.consecutive_failures == 0:
            logger.warning(
                "the IdentSphere revocation feed is unreachable (%s); serving with the %d revocations known",
                error,
                status.entries,
            )
        self.status = FeedStatus(status.synced, status.consecutive_failures + 1, status.entries)


class FeedError(Exception):
    """A poll that failed: the feed could not be read (the message says why; it never holds the key)."""


class Feed:
    """Where the poller is in the feed: its URL, key and cursor. No `repr` of the key."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.url = f"{base_url}/v1/revocations"
        self._api_key = api_key
        self.cursor: str | None = None

    def __repr__(self) -> str:
        return f"Feed(url={self.url!r})"

    def request(self) -> tuple[dict[str, str], dict[str, str]]:
        """The query and headers of the next page."""
        query = {"limit": str(PAGE)}
        if self.cursor is not None:
            query["after"] = self.cursor
        return query, {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}

    def read_page(self, status: int, body: bytes, revocations: RevocationList, now: float) -> bool:
        """Applies one answer; whether another page follows. `FeedError` for an answer that is no page."""
        if status == 400 and self.cursor is not None:
            # The server no longer knows our cursor (its store was reset): read again from the oldest entry
            # still meaningful; entries are idempotent.
            logger.info("the revocation feed refused our cursor; reading it again from the start")
            self.cursor = None
            return True
        if status != 200:
            raise FeedError(f"status {status}")
        try:
            page = json.loads(body)
        except ValueError:
            raise FeedError("the answer is not JSON") from None
        entries = page.get("revocations") if isinstance(page, dict) else None
        cursor = page.get("cursor") if isinstance(page, dict) else None
        if not isinstance(entries, list) or not isinstance(cursor, str):
            raise FeedError("the answer is not a revocation page")
        revocations.apply(entries, now)
        self.cursor = cursor
        return len(entries) >= PAGE
