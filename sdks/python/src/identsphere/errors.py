"""The one error type of the SDK: every refusal, the server's or the SDK's own, is an `IdentSphereError`.

The server's refusals arrive in the API's envelope and keep its code, so callers switch on `code` exactly as
in the error catalog. The SDK makes a few itself: the verifier and the middleware refuse with the catalog's
own codes (`token_invalid`, `insufficient_aal`, ...; `REFUSALS` below is their one mapping to status and
type), and when no envelope could be read at all the client reports `network_error` or
`unexpected_response` (status 0 for the former, type `client_error`), as `@identsphere/react` does.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

#: The refusals the SDK makes itself: code -> (HTTP status, type, message). Codes and types are the catalog's.
REFUSALS: Mapping[str, tuple[int, str, str]] = {
    "token_missing": (401, "authentication_error", "no access token was sent"),
    "token_invalid": (401, "authentication_error", "the access token is not valid"),
    "token_expired": (401, "authentication_error", "the access token has expired"),
    "token_revoked": (401, "authentication_error", "the access token has been revoked"),
    "insufficient_aal": (403, "permission_error", "this action needs a session with a second factor"),
    "not_a_member": (403, "permission_error", "the session is not in the organization this route is for"),
    "csrf_rejected": (403, "permission_error", "cross-site request refused"),
    "service_unavailable": (503, "api_error", "the authentication service is unavailable, retry shortly"),
}

#: Codes of failures on the client's side, when no response with the API's envelope was received.
NETWORK_ERROR = "network_error"
UNEXPECTED_RESPONSE = "unexpected_response"


class IdentSphereError(Exception):
    """A refusal: the API's error envelope plus what the response said around it.

    Attributes:
        status: the HTTP status (0 when no response was received).
        code: the catalog's code (`invalid_credentials`, `token_expired`, ...), or `network_error` /
            `unexpected_response` for failures on the client's side.
        type: the catalog's type (`authentication_error`, ...), or `client_error`.
        message: for humans; never contains a secret.
        param: the offending request field, when the server names one.
        request_id: the response's `X-Request-Id`, to find the request in IdentSphere's log.
        retry_after: seconds to wait before retrying (`Retry-After`), on `429` and `503`.
    """

    def __init__(
        self,
        *,
        status: int,
        code: str,
        type: str,
        message: str,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.type = type
        self.message = message
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"IdentSphereError(status={self.status}, code={self.code!r}, message={self.message!r})"

    def envelope(self) -> dict[str, Any]:
        """The API's error envelope for this refusal, as IdentSphere itself would answer."""
        error: dict[str, Any] = {"code": self.code, "message": self.message, "type": self.type}
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def refusal(code: str) -> IdentSphereError:
    """One of the SDK's own refusals (`REFUSALS`), e.g. `refusal("token_expired")`."""
    status, kind, message = REFUSALS[code]
    return IdentSphereError(status=status, code=code, type=kind, message=message)


def client_error(
    code: str, message: str, *, status: int = 0, request_id: str | None = None
) -> IdentSphereError:
    """A failure on the client's side: `network_error` or `unexpected_response`."""
    return IdentSphereError(
        status=status, code=code, type="client_error", message=message, request_id=request_id
    )


def from_response(status: int, headers: Mapping[str, str], body: object) -> IdentSphereError:
    """The error a non-2xx response stands for: its envelope, or `unexpected_response` without one."""
    request_id = headers.get("x-request-id")
    error = body.get("error") if isinstance(body, dict) else None
    if not (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and isinstance(error.get("type"), str)
        and isinstance(error.get("message"), str)
    ):
        return client_error(
            UNEXPECTED_RESPONSE,
            f"HTTP {status} without the API's error envelope",
            status=status,
            request_id=request_id,
        )
    param = error.get("param")
    return IdentSphereError(
        status=status,
        code=error["code"],
        type=error["type"],
        message=error["message"],
        param=param if isinstance(param, str) else None,
        request_id=request_id,
        retry_after=retry_after(headers.get("retry-after")),
    )


def retry_after(value: str | None, now: float | None = None) -> int | None:
    """Seconds of a `Retry-After` header: delay-seconds (what IdentSphere sends) or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0, round(seconds))
