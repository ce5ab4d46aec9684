"""A real IdentSphere for the tests: the workspace's binary on a free loopback port, with its own temporary
directory (the embedded store) or its own Postgres database and Redis key prefix, the abuse limits off
(`scripts/limits-off.env`: every test client is 127.0.0.1), stopped and removed afterwards whatever happens.

The binary is `$IDENTSPHERE_BIN`, else the first that exists of cargo's usual places (the workspace's
`target/`, `$CARGO_TARGET_DIR`, `~/.cache/identsphere/target`, which `scripts/test.sh` builds).
"""

from __future__ import annotations

import base64
import email
import email.policy
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

REPO = Path(__file__).resolve().parents[4]
#: The key the test servers accept on the revocation feed.
PLATFORM_KEY = "platform-key-for-the-python-sdk-tests-0123456789"
PASSWORD = "correct horse battery staple"


def binary() -> Path:
    """The IdentSphere binary the tests run, or a failure that says how to get one."""
    explicit = os.environ.get("IDENTSPHERE_BIN")
    if explicit:
        return Path(explicit)
    targets = [REPO / "target", Path.home() / ".cache/identsphere/target"]
    if os.environ.get("CARGO_TARGET_DIR"):
        targets.insert(0, Path(os.environ["CARGO_TARGET_DIR"]))
    candidates = [target / profile / "identsphere" for target in targets for profile in ("debug", "release")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = "\n  ".join(str(c) for c in candidates)
    raise RuntimeError(
        "no IdentSphere binary: set IDENTSPHERE_BIN, or build one with `cargo build --workspace --bins` "
        f"at the repository's root (or run sdks/python/scripts/test.sh, which does). Tried:\n  {tried}"
    )


def limits_off() -> dict[str, str]:
    """Every abuse limit off, from the repository's one list of them."""
    lines = (REPO / "scripts/limits-off.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Database:
    """A Postgres database and a Redis key prefix of their own, dropped and deleted by `drop`."""

    def __init__(self) -> None:
        self.admin_url = os.environ.get(
            "IDENTSPHERE_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
        )
        self.redis_url = os.environ.get("IDENTSPHERE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
        self.name = f"identsphere_python_sdk_{secrets.token_hex(6)}"
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {self.name}")
        self.url = f"{self.admin_url.rsplit('/', 1)[0]}/{self.name}"
        self.key_encryption_key = base64.b64encode(secrets.token_bytes(32)).decode()

    def env(self) -> dict[str, str]:
        return {
            "IDENTSPHERE_DATABASE_URL": self.url,
            "IDENTSPHERE_REDIS_URL": self.redis_url,
            "IDENTSPHERE_REDIS_KEY_PREFIX": f"{self.name}:",
            "IDENTSPHERE_KEY_ENCRYPTION_KEY": self.key_encryption_key,
        }

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        with redis.Redis.from_url(self.redis_url) as keys:
            for key in keys.scan_iter(match=f"{self.name}:*"):
                keys.delete(key)


class Server:
    """A running IdentSphere. `env` adds or overrides variables; `database` puts it on Postgres + Redis."""

    def __init__(self, env: Mapping[str, str] = {}, database: Database | None = None) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="identsphere-python-sdk-"))
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.data_dir = self.work / "data"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(Path.home()),
            **limits_off(),
            "IDENTSPHERE_BIND": f"127.0.0.1:{port}",
            "IDENTSPHERE_PUBLIC_BASE_URL": self.base_url,
            "IDENTSPHERE_DATA_DIR": str(self.data_dir),
            "IDENTSPHERE_PLATFORM_API_KEY": PLATFORM_KEY,
            "IDENTSPHERE_KEY_CHECK_INTERVAL": "1",
            "IDENTSPHERE_LOG": "warn",
            "IDENTSPHERE_WORKERS": "2",
            "IDENTSPHERE_ACTOR_ARBITERS": "1",
            **(database.env() if database else {}),
            **env,
        }
        self.http = httpx.Client(base_url=self.base_url, timeout=10)
        self._process: subprocess.Popen[bytes] | None = None
        try:
            self.start()
        except BaseException:
            self.close()
            raise

    def start(self) -> None:
        log = (self.work / "server.log").open("ab")
        self._process = subprocess.Popen([str(binary())], env=self.env, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"IdentSphere exited with {self._process.returncode}:\n{self.log()}")
            try:
                if self.http.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"IdentSphere was not ready within 30 s:\n{self.log()}")

    def stop(self) -> None:
        """Stops the server (its data stays until `close`)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def close(self) -> None:
        self.stop()
        self.http.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def log(self) -> str:
        path = self.work / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def cli(self, *args: str) -> str:
        """Runs the binary's command line (`keys rotate`, ...) with this server's environment: its stdout."""
        done = subprocess.run(
            [str(binary()), *args], env=self.env, capture_output=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        return done.stdout.decode()

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a counter's lines at `/metrics` that carry these labels."""
        wanted = [f'{key}="{value}"' for key, value in labels.items()]
        total = 0.0
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith(f"{name}{{") and all(pair in line for pair in wanted):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def jwks_served(self) -> int:
        """JWKS answers this server has really sent, whoever asked."""
        return int(self.metric("identsphere_http_requests_total", route="/.well-known/jwks.json"))

    def published_kids(self) -> list[str]:
        return [key["kid"] for key in self.http.get("/.well-known/jwks.json").json()["keys"]]

    def link_token(self, address: str, page: str, after: float = 0) -> str:
        """The token of the newest `page` link (`verify-email`, `reset-password`) mailed to `address`: mail
        goes to `outbox/` in the data directory, after the answer, so it is waited for."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            mails = sorted(self.data_dir.glob("outbox/*.eml"), key=lambda p: -p.stat().st_mtime)
            for path in mails:
                if path.stat().st_mtime < after:
                    continue
                message: Any = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                if message["To"] != address:
                    continue
                text = message.get_body(preferencelist=("plain",)).get_content()
                found = re.search(rf"/{page}\?token=([A-Za-z0-9_-]+)", text)
                if found:
                    return found.group(1)
            time.sleep(0.05)
        raise AssertionError(f"no {page} link was mailed to {address}")

    def api(self, method: str, path: str, token: str, json: Any = None) -> Any:
        """A call the SDK does not make (organizations): the tests' own setup. Its JSON answer."""
        response = self.http.request(method, path, json=json, headers={"Authorization": f"Bearer {token}"})
        assert response.is_success, response.text
        return response.json() if response.content else None
