"""`Verifier` and `AsyncVerifier`: access tokens checked locally, against IdentSphere's JWKS, and refused when
the revocation feed lists them.

The checks are IdentSphere's own, written once (`_Checks`): at most 8 KiB; header `alg: RS256` and
`typ: JWT` with a `kid` of the JWKS; the signature (PyJWT); `iss` equal to the configured issuer; `exp`,
`iat` and `sub` present; claim `typ: access` (refresh and mfa tokens are refused); `exp` against the system
clock with a configurable leeway (default 0); then the revocation list.

The two classes differ only in how they wait: `Verifier` with threads (a lock around JWKS fetches, the feed
polled by a daemon thread), `AsyncVerifier` with asyncio (an `asyncio.Lock`, the feed polled by a task on
the loop). In both, one JWKS fetch is in flight at a time however many requests wait for it, and the feed
starts with the first `verify`, which waits for its first page so that a fresh process knows the
revocations before it admits anyone.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import threading
import time
import weakref
from types import TracebackType
from typing import Any

import httpx
import jwt

from identsphere import _api
from identsphere._jwks import KeyCache, KeySet
from identsphere._revocations import MAX_PAGES, Feed, FeedError, FeedStatus, RevocationList
from identsphere.claims import Claims
from identsphere.errors import refusal

logger = logging.getLogger("identsphere")

#: Longest token accepted: anything larger is refused before any parsing, as IdentSphere does.
MAX_TOKEN_LEN = 8 * 1024
#: The least time between two JWKS fetches, whatever their cause.
JWKS_REFETCH_INTERVAL = 30.0
#: How often the revocation feed is polled: a revoked token is refused within this plus one round trip.
REVOCATION_POLL_INTERVAL = 5.0
#: Seconds to open a connection to IdentSphere, and for each phase of a call after it.
CONNECT_TIMEOUT = 3.0
TIMEOUT = 5.0


class _Checks:
    """What both verifiers share: the configuration, the key cache, the revocation list and the checks."""

    def __init__(
        self,
        base_url: str,
        *,
        issuer: str | None,
        leeway: float,
        jwks_refetch_interval: float,
        platform_api_key: str | None,
        revocation_poll_interval: float,
    ) -> None:
        base = _api.base(base_url)
        self.issuer = issuer or base
        self.leeway = leeway
        self.jwks_url = f"{base}/.well-known/jwks.json"
        self.keys = KeyCache(jwks_refetch_interval)
        self.poll_interval = revocation_poll_interval
        self.feed = Feed(base, platform_api_key) if platform_api_key else None
        self.revocations = RevocationList() if platform_api_key else None
        if platform_api_key is None:
            logger.warning(
                "no IdentSphere platform API key: the revocation feed is off, so a revoked token is accepted "
                "until it expires"
            )

    def kid(self, token: str) -> str:
        """The `kid` of a token whose header is IdentSphere's (`alg: RS256`, `typ: JWT`)."""
        if len(token) > MAX_TOKEN_LEN:
            raise refusal("token_invalid")
        # Only the header segment: PyJWT's own reading decodes every segment, which `decode` does again.
        segment = token.partition(".")[0]
        try:
            header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        except (ValueError, binascii.Error):
            raise refusal("token_invalid") from None
        if not isinstance(header, dict):
            raise refusal("token_invalid")
        kid = header.get("kid")
        if header.get("alg") != "RS256" or header.get("typ") != "JWT" or not isinstance(kid, str) or not kid:
            raise refusal("token_invalid")
        return kid

    def claims(self, token: str, keys: KeySet, kid: str) -> Claims:
        """Every check after the header's, with the keys the verifier holds."""
        key = keys.keys.get(kid)
        if key is None:
            # Without any key ever fetched, the answer cannot be known: that is IdentSphere's outage, not the
            # token's fault.
            raise refusal("token_invalid" if keys.loaded else "service_unavailable")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self.issuer,
                leeway=self.leeway,
                # `iat` is not compared with this machine's clock: a server clock a second ahead must not
                # refuse a fresh token. Tokens carry no audience.
                options={"require": ["exp", "iat", "sub", "iss"], "verify_iat": False, "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise refusal("token_expired") from None
        except jwt.InvalidTokenError:
            raise refusal("token_invalid") from None
        claims = Claims.from_payload(payload)
        if claims.typ != "access":
            raise refusal("token_invalid")
        if self.revocations is not None and self.revocations.is_revoked(claims.jti, claims.sid, time.time()):
            raise refusal("token_revoked")
        return claims

    def install(self, response: httpx.Response) -> KeySet:
        """A JWKS answer becomes the key set in use (a failure keeps the keys in use, and is logged)."""
        try:
            if response.status_code != 200:
                raise ValueError(f"status {response.status_code}")
            keys = self.keys.install(
                response.content, response.headers.get("cache-control"), time.monotonic()
            )
        except ValueError as error:
            return self.fetch_failed(error)
        logger.debug("fetched the IdentSphere JWKS: %d keys", len(keys.keys))
        return keys

    def fetch_failed(self, error: Exception) -> KeySet:
        logger.warning("could not fetch the IdentSphere JWKS (%s); keeping the keys in use", error)
        return self.keys.current


class _Verifier:
    """What both verifiers show of themselves."""

    _checks: _Checks

    @property
    def issuer(self) -> str:
        """The `iss` tokens must carry."""
        return self._checks.issuer

    @property
    def revocation_feed(self) -> FeedStatus | None:
        """The state of the revocation feed, or `None` when it is off (no platform API key)."""
        return None if self._checks.revocations is None else self._checks.revocations.status


def _jwks_headers() -> dict[str, str]:
    return {"User-Agent": _api.USER_AGENT, "Accept": "application/json"}


class _Process:
    """What a `Verifier` holds per process: after a fork (gunicorn's `--preload`), locks, connections and the
    poller thread of the parent are not the child's, so the child makes its own at its first `verify`."""

    def __init__(self, http: httpx.Client) -> None:
        self.pid = os.getpid()
        self.http = http
        #: Serializes JWKS fetches: concurrent requests for one new `kid` cost one fetch.
        self.fetching = threading.Lock()
        #: Set once the feed's first poll has ended (or at once without a feed).
        self.first_poll = threading.Event()
        #: Set to stop the poller.
        self.stop = threading.Event()


class Verifier(_Verifier):
    """Verifies IdentSphere access tokens locally: make one, and share it between threads.

    `base_url` is where IdentSphere is reached: the JWKS is `<base_url>/.well-known/jwks.json`. Tokens must
    carry `iss` equal to `issuer` (default: `base_url`; set it when you reach IdentSphere at another address
    than its `IDENTSPHERE_PUBLIC_BASE_URL`). With `platform_api_key` (the server's
    `IDENTSPHERE_PLATFORM_API_KEY`), the revocation feed is polled every `revocation_poll_interval` seconds
    and revoked tokens are refused; without it, a revoked token passes until it expires (a warning says
    so). `leeway` is the clock skew accepted on `exp`, in seconds.
    """

    def __init__(
        self,
        base_url: str,
        *,
        issuer: str | None = None,
        platform_api_key: str | None = None,
        leeway: float = 0,
        jwks_refetch_interval: float = JWKS_REFETCH_INTERVAL,
        revocation_poll_interval: float = REVOCATION_POLL_INTERVAL,
        timeout: float = TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._checks = _Checks(
            base_url,
            issuer=issuer,
            leeway=leeway,
            jwks_refetch_interval=jwks_refetch_interval,
            platform_api_key=platform_api_key,
            revocation_poll_interval=revocation_poll_interval,
        )
        self._timeout = _api.timeout(timeout, connect_timeout)
        self._http_client = http_client
        self._starting = threading.Lock()
        self._process: _Process | None = None

    def verify(self, token: str) -> Claims:
        """The claims of a valid access token.

        Raises `IdentSphereError`: `token_invalid` for anything but a well-formed access token signed by a
        published key of this issuer, `token_expired` once `exp` (plus the leeway) has passed,
        `token_revoked` when the feed listed its `jti` or `sid`, `service_unavailable` when no signing key
        could ever be fetched.
        """
        checks = self._checks
        kid = checks.kid(token)
        process = self._started()
        keys = checks.keys.current
        if checks.keys.is_stale(time.monotonic()):
            self._refresh_in_background(process)
        if kid not in keys.keys:
            keys = self._refetch_for(kid, process)
        return checks.claims(token, keys, kid)

    def close(self) -> None:
        """Stops the feed's poller and closes the connections (not those of an `http_client` you passed)."""
        process = self._process
        if process is not None and process.pid == os.getpid():
            process.stop.set()
            if process.http is not self._http_client:
                process.http.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _started(self) -> _Process:
        """This process's state, made (and the poller started) at its first `verify`."""
        process = self._process
        if process is None or process.pid != os.getpid():
            with self._starting:
                process = self._process
                if process is None or process.pid != os.getpid():
                    process = self._start()
        process.first_poll.wait()
        return process

    def _start(self) -> _Process:
        process = _Process(self._http_client or httpx.Client(timeout=self._timeout))
        self._process = process
        checks = self._checks
        if checks.feed is None or checks.revocations is None:
            process.first_poll.set()
            return process
        poller = (checks.feed, checks.revocations, checks.poll_interval, process)
        threading.Thread(
            target=_poll_forever, args=poller, name="identsphere-revocation-feed", daemon=True
        ).start()
        # The thread holds no reference to the verifier: when the verifier is collected, the poller stops.
        weakref.finalize(self, process.stop.set)
        return process

    def _refetch_for(self, kid: str, process: _Process) -> KeySet:
        """For a `kid` not in the current set: a fetch if the rate limit allows, and the keys to use then. A
        fetch already in flight (the first one, a rotation's) is waited for rather than answered without."""
        cache = self._checks.keys
        if cache.current.loaded and not cache.may_fetch(time.monotonic()) and not process.fetching.locked():
            return cache.current
        with process.fetching:
            # Another request may have fetched while this one waited.
            if kid in cache.current.keys or not cache.may_fetch(time.monotonic()):
                return cache.current
            return self._fetch(process)

    def _refresh_in_background(self, process: _Process) -> None:
        # The lock is taken here and released by the thread: no second refresh starts meanwhile, and a
        # request never waits for a refresh it did not need.
        if process.fetching.acquire(blocking=False):
            try:
                threading.Thread(target=self._refresh, args=(process,), daemon=True).start()
            except RuntimeError:
                # No thread to be had (the interpreter is shutting down): the lock must not stay taken.
                process.fetching.release()

    def _refresh(self, process: _Process) -> None:
        try:
            if self._checks.keys.is_stale(time.monotonic()):
                self._fetch(process)
        finally:
            process.fetching.release()

    def _fetch(self, process: _Process) -> KeySet:
        """Fetches the JWKS (the caller holds `process.fetching`)."""
        checks = self._checks
        checks.keys.attempt(time.monotonic())
        try:
            response = process.http.get(checks.jwks_url, headers=_jwks_headers())
        except httpx.TransportError as error:
            return checks.fetch_failed(error)
        return checks.install(response)


def _poll_forever(feed: Feed, revocations: RevocationList, every: float, process: _Process) -> None:
    """The feed's poller thread: a poll, then one every `every` seconds, until `process.stop` is set."""
    while True:
        try:
            for _ in range(MAX_PAGES):
                query, headers = feed.request()
                response = process.http.get(feed.url, params=query, headers=headers)
                if not feed.read_page(response.status_code, response.content, revocations, time.time()):
                    break
            revocations.record(None)
        except Exception as failure:
            revocations.record(_describe(failure))
        process.first_poll.set()
        if process.stop.wait(every):
            return


def _describe(failure: Exception) -> str:
    """A poll's failure, for the log: expected ones briefly, anything else with its traceback."""
    if not isinstance(failure, (httpx.TransportError, FeedError)):
        logger.error("the IdentSphere revocation poller failed", exc_info=failure)
    return f"{type(failure).__name__}: {failure}"


class _Loop:
    """What an `AsyncVerifier` holds for the loop it serves (asyncio locks and events are bound to one)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        #: Serializes JWKS fetches: concurrent requests for one new `kid` cost one fetch.
        self.fetching = asyncio.Lock()
        #: Set once the feed's first poll has ended (or at once without a feed).
        self.first_poll = asyncio.Event()
        #: A background refresh of the JWKS is under way.
        self.refreshing = False


class AsyncVerifier(_Verifier):
    """`Verifier` for asyncio (ASGI apps): the same options and checks, `verify` is a coroutine.

    It serves the event loop of its first `verify` (an ASGI server runs one per process); from another loop
    `verify` raises `RuntimeError`: make one verifier per loop. The feed is polled by a task on that loop.
    """

    def __init__(
        self,
        base_url: str,
        *,
        issuer: str | None = None,
        platform_api_key: str | None = None,
        leeway: float = 0,
        jwks_refetch_interval: float = JWKS_REFETCH_INTERVAL,
        revocation_poll_interval: float = REVOCATION_POLL_INTERVAL,
        timeout: float = TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._checks = _Checks(
            base_url,
            issuer=issuer,
            leeway=leeway,
            jwks_refetch_interval=jwks_refetch_interval,
            platform_api_key=platform_api_key,
            revocation_poll_interval=revocation_poll_interval,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=_api.timeout(timeout, connect_timeout))
        self._loop: _Loop | None = None
        # Strong references: the loop keeps only weak ones to its tasks.
        self._tasks: set[asyncio.Task[Any]] = set()

    async def verify(self, token: str) -> Claims:
        """`Verifier.verify`."""
        checks = self._checks
        kid = checks.kid(token)
        loop = await self._started()
        keys = checks.keys.current
        if checks.keys.is_stale(time.monotonic()) and not loop.refreshing:
            loop.refreshing = True
            self._spawn(self._refresh(loop))
        if kid not in keys.keys:
            keys = await self._refetch_for(kid, loop.fetching)
        return checks.claims(token, keys, kid)

    async def aclose(self) -> None:
        """Stops the feed's poller and closes the connections (not those of an `http_client` you passed)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncVerifier:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _started(self) -> _Loop:
        """This loop's state; the poller starts at the first `verify`, which waits for its first poll."""
        running = asyncio.get_running_loop()
        loop = self._loop
        if loop is None:
            loop = self._loop = _Loop(running)
            checks = self._checks
            if checks.feed is None or checks.revocations is None:
                loop.first_poll.set()
            else:
                self._spawn(self._poll_forever(checks.feed, checks.revocations, loop.first_poll))
        elif loop.loop is not running:
            raise RuntimeError("an AsyncVerifier serves one event loop: make one per loop")
        if not loop.first_poll.is_set():
            await loop.first_poll.wait()
        return loop

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refetch_for(self, kid: str, fetching: asyncio.Lock) -> KeySet:
        """`Verifier._refetch_for`, waiting on the loop."""
        cache = self._checks.keys
        if cache.current.loaded and not cache.may_fetch(time.monotonic()) and not fetching.locked():
            return cache.current
        async with fetching:
            if kid in cache.current.keys or not cache.may_fetch(time.monotonic()):
                return cache.current
            return await self._fetch()

    async def _refresh(self, loop: _Loop) -> None:
        try:
            async with loop.fetching:
                if self._checks.keys.is_stale(time.monotonic()):
                    await self._fetch()
        finally:
            loop.refreshing = False

    async def _fetch(self) -> KeySet:
        """Fetches the JWKS (the caller holds the fetch lock)."""
        checks = self._checks
        checks.keys.attempt(time.monotonic())
        try:
            response = await self._http.get(checks.jwks_url, headers=_jwks_headers())
        except httpx.TransportError as error:
            return checks.fetch_failed(error)
        return checks.install(response)

    async def _poll_forever(self, feed: Feed, revocations: RevocationList, first_poll: asyncio.Event) -> None:
        """`_poll_forever`, as a task: ends when cancelled (`aclose`) or with its loop."""
        while True:
            try:
                for _ in range(MAX_PAGES):
                    query, headers = feed.request()
                    response = await self._http.get(feed.url, params=query, headers=headers)
                    if not feed.read_page(response.status_code, response.content, revocations, time.time()):
                        break
                revocations.record(None)
            except Exception as failure:
                revocations.record(_describe(failure))
            first_poll.set()
            await asyncio.sleep(self._checks.poll_interval)
