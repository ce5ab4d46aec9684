"""Verify an IdentSphere access token as any resource server in Python does (python-jose + httpx).

Usage: verify_token.py BASE_URL TOKEN ISSUER
Prints the verified claims as JSON; exits non-zero if the token does not verify.
"""

import json
import sys

import httpx
from jose import jwt

base_url, token, issuer = sys.argv[1:4]
jwks = httpx.get(f"{base_url}/.well-known/jwks.json").json()
claims = jwt.decode(token, jwks, algorithms=["RS256"], options={"verify_aud": False}, issuer=issuer)
print(json.dumps(claims))
