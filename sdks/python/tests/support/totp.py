"""An authenticator app for the tests: RFC 6238 codes (SHA-1, 6 digits, 30-second steps), as IdentSphere
accepts them.

IdentSphere takes a code of the step before, the current one or the one after, each step at most once per
user and never one older than the last accepted. So successive codes use successive steps, starting one
step back: three codes in a row need no waiting, a fourth waits for the clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time

STEP = 30


def code(secret: str, step: int) -> str:
    """The code of a base32 `secret` at time step `step` (RFC 4226's truncation)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


class Authenticator:
    """One user's authenticator: hands out codes IdentSphere has not seen yet."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._last_step: int | None = None

    def next_code(self) -> str:
        current = int(time.time()) // STEP
        step = current - 1 if self._last_step is None else max(self._last_step + 1, current - 1)
        if step > current + 1:
            time.sleep((step - 1) * STEP - time.time() + 0.1)
        self._last_step = step
        return code(self.secret, step)
