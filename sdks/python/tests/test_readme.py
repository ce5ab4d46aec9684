"""The README's examples are the published front page: each runs here as it is written, against a real
IdentSphere in place of `https://auth.example.com`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

from identsphere import Client, IdentSphereError, TokenResponse, Verifier
from support.apps import serve_asgi, serve_wsgi
from support.server import PLATFORM_KEY, Server
from support.users import sign_up

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
EXAMPLES = re.findall(r"```python\n(.*?)```", README, re.DOTALL)


def run(example: str, server: Server) -> dict[str, Any]:
    """Runs an example against `server`: the names it defined."""
    names: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(example.replace("https://auth.example.com", server.base_url), "README.md", "exec"), names)  # noqa: S102
    return names


@pytest.fixture(autouse=True)
def platform_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTSPHERE_PLATFORM_API_KEY", PLATFORM_KEY)


def test_the_readme_has_the_three_examples() -> None:
    assert len(EXAMPLES) == 3


@pytest.mark.parametrize("index", [0, 1], ids=["fastapi", "flask"])
def test_the_protected_routes_of_the_readme_serve_their_claims(
    index: int, server: Server, client: Client
) -> None:
    names = run(EXAMPLES[index], server)
    serve: Callable[[], Any] = (
        (lambda: serve_asgi(names["app"]))
        if index == 0
        else (lambda: serve_wsgi(names["app"], names["verifier"]))
    )
    app = serve()
    try:
        _, tokens = sign_up(client)
        response = httpx.get(f"{app.url}/me", headers={"Authorization": f"Bearer {tokens.access_token}"})
        assert response.json() == {"user": tokens.user.id, "organization": tokens.session.organization_id}
        assert httpx.get(f"{app.url}/me").json()["error"]["code"] == "token_missing"
    finally:
        app.close()
        if isinstance(names["verifier"], Verifier):
            names["verifier"].close()


def test_the_sign_in_flow_of_the_readme(start_server: Callable[..., Server]) -> None:
    server = start_server()
    with Client(server.base_url) as setup:
        ada = setup.register("ada@example.com", "correct horse battery staple")
        assert isinstance(ada, TokenResponse)
        acme = server.api("POST", "/v1/organizations", ada.access_token, {"name": "Acme", "slug": "acme"})
    names = run(EXAMPLES[2], server)
    client, tokens = names["client"], names["tokens"]
    assert tokens.session.organization_id == acme["id"], "signed in, then switched into Acme"
    assert tokens.session.id != ada.session.id, "a session of its own"
    with pytest.raises(IdentSphereError, match="token_revoked"):
        client.session(tokens.access_token)  # the example ended with a logout
    client.close()
