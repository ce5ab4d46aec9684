"""Tokens taken apart and forged, to show what the verifier refuses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwt.algorithms import RSAAlgorithm


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(token: str, index: int) -> Any:
    """A JWT part decoded as JSON (0: header, 1: claims)."""
    segment = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def signing_input(header: Any, claims: Any) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"


def rs256(header: Any, claims: Any, key: rsa.RSAPrivateKey | None = None) -> str:
    """A token signed with `key`, by default a fresh RSA key that is not IdentSphere's."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = signing_input(header, claims)
    signature = key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{message}.{b64(signature)}"


def hs256(header: Any, claims: Any, secret: bytes) -> str:
    message = signing_input(header, claims)
    return f"{message}.{b64(hmac.new(secret, message.encode(), hashlib.sha256).digest())}"


def public_pem(jwk: Any) -> bytes:
    """The PEM of a JWKS key: what a key-confusion attack uses as an HMAC secret."""
    key = RSAAlgorithm.from_jwk(jwk)
    assert isinstance(key, rsa.RSAPublicKey)
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
