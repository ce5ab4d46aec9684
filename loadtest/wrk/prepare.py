"""Registers users on a running IdentSphere and writes what the wrk scripts need.

Usage: prepare.py BASE_URL OUT_DIR N_FAMILIES [N_EXTRA_USERS]
Writes OUT_DIR/access.txt (one access token) and OUT_DIR/refresh-<i>.txt (one refresh token per family,
i = 1..N_FAMILIES, one family per wrk thread). N_EXTRA_USERS more users are registered (4 at a time) to give the
store some size; the registration rate is printed.
"""

import json
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

base, out, families = sys.argv[1], sys.argv[2], int(sys.argv[3])
extra = int(sys.argv[4]) if len(sys.argv) > 4 else 0


def register(_=None):
    body = json.dumps({"email": f"bench-{uuid.uuid4().hex}@example.com", "password": "correct horse battery staple"})
    request = urllib.request.Request(
        f"{base}/v1/auth/register", data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 201
        return json.load(response)


tokens = [register() for _ in range(families)]
with open(f"{out}/access.txt", "w") as f:
    f.write(tokens[0]["access_token"])
for i, t in enumerate(tokens, start=1):
    with open(f"{out}/refresh-{i}.txt", "w") as f:
        f.write(t["refresh_token"])

if extra:
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(register, range(extra)))
    elapsed = time.monotonic() - started
    print(f"registered {extra} users in {elapsed:.1f} s: {extra / elapsed:.0f}/s")
