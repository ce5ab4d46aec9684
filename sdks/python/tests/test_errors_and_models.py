"""The pieces without I/O: the SDK's own refusals against the catalog, the envelope, and the readers of what
the server sends (its timestamps, `Retry-After`, bodies that are not what the contract says)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from identsphere import IdentSphereError, TokenResponse
from identsphere._gate import answer
from identsphere.errors import REFUSALS, from_response, refusal, retry_after
from identsphere.models import parse_timestamp, read, sign_in_result

# The rows of the error catalog (docs/api.md) for the codes the SDK answers with itself.
CATALOG = {
    "token_missing": (401, "authentication_error"),
    "token_invalid": (401, "authentication_error"),
    "token_expired": (401, "authentication_error"),
    "token_revoked": (401, "authentication_error"),
    "insufficient_aal": (403, "permission_error"),
    "not_a_member": (403, "permission_error"),
    "csrf_rejected": (403, "permission_error"),
    "service_unavailable": (503, "api_error"),
}


def test_every_refusal_of_the_sdk_is_its_row_of_the_catalog() -> None:
    assert {code: (status, kind) for code, (status, kind, _) in REFUSALS.items()} == CATALOG
    for code in CATALOG:
        status, headers, body = answer(refusal(code))
        assert status == CATALOG[code][0]
        envelope = json.loads(body)["error"]
        assert (envelope["code"], envelope["type"]) == (code, CATALOG[code][1])
        assert envelope["message"]
        assert ("www-authenticate", "Bearer") in headers if status == 401 else True


def test_a_failure_on_the_client_side_is_answered_as_service_unavailable() -> None:
    network = IdentSphereError(status=0, code="network_error", type="client_error", message="refused")
    status, headers, body = answer(network)
    assert (status, json.loads(body)["error"]["code"]) == (503, "service_unavailable")
    assert ("retry-after", "1") in headers


def test_an_error_response_keeps_the_envelope_and_what_surrounds_it() -> None:
    body = {
        "error": {
            "code": "invalid_request",
            "message": "unknown field",
            "type": "invalid_request_error",
            "param": "x",
        }
    }
    error = from_response(400, {"x-request-id": "r-1", "retry-after": "7"}, body)
    assert (error.status, error.code, error.type, error.param) == (
        400,
        "invalid_request",
        "invalid_request_error",
        "x",
    )
    assert (error.request_id, error.retry_after) == ("r-1", 7)
    assert error.envelope() == body
    proxy = from_response(502, {}, None)
    assert (proxy.status, proxy.code, proxy.type) == (502, "unexpected_response", "client_error")


def test_retry_after_reads_seconds_or_an_http_date() -> None:
    assert retry_after("42") == 42
    assert (
        retry_after(
            "Wed, 21 Oct 2015 07:28:30 GMT",
            now=datetime(2015, 10, 21, 7, 28, tzinfo=timezone.utc).timestamp(),
        )
        == 30
    )
    assert retry_after("soon") is None
    assert retry_after(None) is None


def test_timestamps_of_any_precision_read_as_aware_datetimes() -> None:
    expected = datetime(2026, 12, 3, 9, 55, 11, 820000, tzinfo=timezone.utc)
    assert parse_timestamp("2026-12-03T09:55:11.82Z") == expected
    assert parse_timestamp("2026-12-03T09:55:11.820000123Z") == expected
    assert parse_timestamp("2026-12-03T10:55:11.82+01:00") == expected
    assert parse_timestamp("2026-12-03T09:55:11Z") == expected.replace(microsecond=0)
    assert parse_timestamp("yesterday") is None


def test_a_body_that_breaks_the_contract_is_unexpected_response_and_new_fields_are_ignored() -> None:
    user = {
        "id": "u",
        "email": "a@b.c",
        "email_verified": False,
        "display_name": None,
        "created_at": "2026-01-01T00:00:00Z",
    }
    session = {
        "id": "s", "organization_id": "o", "aal": "aal1", "auth_method": "password", "auth_time": 1,
        "expires_at": "2026-02-01T00:00:00Z",
    }  # fmt: skip
    tokens = {"token_type": "Bearer", "access_token": "a", "refresh_token": "r", "expires_in": 900}
    parsed = sign_in_result(read({**tokens, "user": user, "session": session, "a_newer_field": 1}))
    assert isinstance(parsed, TokenResponse)
    for broken in (
        {**tokens, "user": user},
        {**tokens, "user": user, "session": {**session, "auth_time": True}},
    ):
        with pytest.raises(IdentSphereError) as caught:
            sign_in_result(read(broken))
        assert caught.value.code == "unexpected_response"
