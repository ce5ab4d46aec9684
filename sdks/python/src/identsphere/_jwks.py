"""IdentSphere's public keys: the JWKS as the verifiers keep it, and the rules of when to fetch it again.

No I/O and no clock here (`now` is a parameter, `time.monotonic()` seconds): the verifiers fetch, under
their own lock, and hand the answer to `KeyCache.install`. The rules, the same in every SDK:
- the key set is used as long as the answer's `Cache-Control: max-age` says (default 5 minutes, at most a
  day), then refreshed in the background while requests go on with the keys they have;
- a token whose `kid` is unknown may trigger a fetch (a key rotation), but fetches of any cause are at most
  one per `min_interval`, so a flood of forged `kid`s costs one fetch;
- a failed fetch keeps the keys in use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm
from jwt.exceptions import InvalidKeyError

#: Used when the answer has no usable `max-age`: IdentSphere's own value.
DEFAULT_MAX_AGE = 300.0
#: Longest a key set is trusted without asking again, whatever the server says.
MAX_MAX_AGE = 24 * 3600.0


@dataclass(frozen=True)
class KeySet:
    """One fetched key set; replaced whole, never changed, so readers need no lock."""

    keys: Mapping[str, RSAPublicKey] = field(default_factory=dict)
    #: When its `max-age` runs out; `None` before the first successful fetch.
    fresh_until: float | None = None

    @property
    def loaded(self) -> bool:
        """Whether any fetch has succeeded yet."""
        return self.fresh_until is not None


class KeyCache:
    """The current key set and when the last fetch started. The verifier that owns it serializes fetches."""

    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self.current = KeySet()
        self._last_attempt: float | None = None

    def may_fetch(self, now: float) -> bool:
        """Whether the rate limit allows a fetch now."""
        return self._last_attempt is None or now - self._last_attempt >= self.min_interval

    def is_stale(self, now: float) -> bool:
        """Whether the key set's `max-age` has run out (so a background refresh is due, if allowed)."""
        fresh_until = self.current.fresh_until
        return fresh_until is not None and now >= fresh_until and self.may_fetch(now)

    def attempt(self, now: float) -> None:
        """A fetch starts now (successful or not, it counts for the rate limit)."""
        self._last_attempt = now

    def install(self, body: bytes, cache_control: str | None, now: float) -> KeySet:
        """The key set of a JWKS answer becomes the current one. `ValueError` for a body that is no JWKS
        (the keys in use stay)."""
        age = max_age(cache_control)
        age = min(DEFAULT_MAX_AGE if age is None else age, MAX_MAX_AGE)
        self.current = KeySet(rs256_keys(body), now + max(age, self.min_interval))
        return self.current


def rs256_keys(body: bytes) -> dict[str, RSAPublicKey]:
    """The RS256 signing keys of a JWKS, by `kid`. Keys for another use or algorithm are left out."""
    try:
        document = json.loads(body)
    except ValueError:
        raise ValueError("the JWKS is not JSON") from None
    jwks = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(jwks, list):
        raise ValueError("the JWKS has no `keys` list")
    keys: dict[str, RSAPublicKey] = {}
    for jwk in jwks:
        if not (
            isinstance(jwk, dict)
            and jwk.get("kty") == "RSA"
            and jwk.get("alg", "RS256") == "RS256"
            and jwk.get("use", "sig") == "sig"
            and isinstance(jwk.get("kid"), str)
        ):
            continue
        try:
            key = RSAAlgorithm.from_jwk(jwk)
        except (InvalidKeyError, ValueError, TypeError):
            # One malformed key costs that key, not the set.
            continue
        # A JWKS never carries a private part; one that does is not used.
        if isinstance(key, RSAPublicKey):
            keys[jwk["kid"]] = key
    return keys


def max_age(cache_control: str | None) -> float | None:
    """`max-age` of a `Cache-Control` value, in seconds (`no-store` and `no-cache` count as zero)."""
    age = None
    for raw in (cache_control or "").split(","):
        directive = raw.strip().lower()
        if directive in ("no-store", "no-cache"):
            return 0.0
        if directive.startswith("max-age="):
            seconds = directive[len("max-age=") :].strip('"')
            age = float(seconds) if seconds.isdigit() else None
    return age
