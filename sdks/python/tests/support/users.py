"""Users made through the SDK's own client, as an application would make them."""

from __future__ import annotations

import secrets

from identsphere import Client, TokenResponse, TotpConfirmation
from support.server import PASSWORD
from support.totp import Authenticator


def new_email() -> str:
    return f"user-{secrets.token_hex(6)}@example.com"


def sign_up(client: Client) -> tuple[str, TokenResponse]:
    """A new user, signed in: their email and the token response."""
    email = new_email()
    result = client.register(email, PASSWORD)
    assert isinstance(result, TokenResponse), result
    return email, result


def enroll(client: Client, tokens: TokenResponse) -> tuple[Authenticator, TotpConfirmation]:
    """TOTP turned on in the session of `tokens`: the user's authenticator and the confirmation (at aal2)."""
    enrollment = client.enroll_totp(access_token=tokens.access_token)
    device = Authenticator(enrollment.secret)
    confirmation = client.confirm_totp(
        device.next_code(), access_token=tokens.access_token, refresh_token=tokens.refresh_token
    )
    return device, confirmation


def log_in(
    client: Client, email: str, password: str = PASSWORD, organization: str | None = None
) -> TokenResponse:
    """A new session of a user without a second factor."""
    result = client.login(email, password, organization=organization)
    assert isinstance(result, TokenResponse), result
    return result
