//! Every failure of the client is an `IdentSphereError`: the server's error envelope as it came, or one of
//! the client-side codes below when no envelope could be read.

/** The server's envelope: `{"error": {"code", "message", "type", "param"?}}`. */
export interface ErrorEnvelope {
  error: { code: string; message: string; type: string; param?: string };
}

/** Codes the client reports itself, when the server gave no envelope. */
export const CLIENT_ERROR_CODES = {
  /** The request never got an HTTP response (offline, DNS, connection refused, CORS refusal). */
  network: "network_error",
  /** An HTTP response that is not the JSON the contract promises (a proxy's HTML error page, say). */
  unexpectedResponse: "unexpected_response",
  /** The browser has no WebAuthn on this page (or, for `mediation: "conditional"`, no passkey autofill). */
  passkeysUnsupported: "passkeys_unsupported",
  /**
   * The browser's passkey request ended without a credential: the user closed the dialog, it timed out, or
   * the request was aborted (by the caller's signal, or by a later passkey call of the same client).
   */
  passkeyCancelled: "passkey_cancelled",
  /** Any other failure of `navigator.credentials` (`SecurityError`: the page is not on the server's RP ID). */
  webauthn: "webauthn_error",
  /**
   * Bearer mode: a sign-in through a provider needs WebCrypto for its PKCE challenge, which browsers give
   * only to secure pages (https://, localhost). Reported before the browser leaves the page.
   */
  pkceUnsupported: "pkce_unsupported",
  /**
   * A sign-in through a provider needs a page to leave and come back to, and `sessionStorage` to remember the
   * flow meanwhile: not during server rendering, nor in a tab whose storage is refused.
   */
  redirectUnsupported: "redirect_unsupported",
  /**
   * Cookie mode: a sign-in succeeded, but the browser did not send the session cookies it had just been given
   * back to IdentSphere: an IdentSphere on another site whose cookies are not `SameSite=None`, or a browser
   * that blocks third-party cookies. The bearer mode works there.
   */
  cookiesBlocked: "cookies_blocked",
} as const;

export class IdentSphereError extends Error {
  /** The catalog code (`invalid_credentials`, `token_expired`, …) or a client-side code. */
  readonly code: string;
  /** The catalog type (`authentication_error`, …); `client_error` for client-side codes. */
  readonly type: string;
  /** The HTTP status; 0 when there was no response. */
  readonly status: number;
  /** The offending request field, when the server names one. */
  readonly param: string | undefined;
  /** The server's `X-Request-Id`, to find the request in its log. */
  readonly requestId: string | undefined;

  constructor(init: {
    code: string;
    type: string;
    message: string;
    status: number;
    param?: string | undefined;
    requestId?: string | undefined;
    cause?: unknown;
  }) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "IdentSphereError";
    this.code = init.code;
    this.type = init.type;
    this.status = init.status;
    this.param = init.param;
    this.requestId = init.requestId;
  }
}

export function isErrorEnvelope(body: unknown): body is ErrorEnvelope {
  if (typeof body !== "object" || body === null || !("error" in body)) return false;
  const error = (body as { error: unknown }).error;
  return (
    typeof error === "object" &&
    error !== null &&
    typeof (error as Record<string, unknown>).code === "string" &&
    typeof (error as Record<string, unknown>).type === "string" &&
    typeof (error as Record<string, unknown>).message === "string"
  );
}

/** Codes meaning the credentials this client holds are dead: signing in again is the only way on. */
const SESSION_ENDED = new Set([
  "token_missing",
  "token_invalid",
  "token_expired",
  "token_revoked",
  "refresh_token_reused",
  "account_disabled",
]);

/** Whether a failed refresh means the session is over (rather than a transient failure worth a retry). */
export function endsSession(error: unknown): boolean {
  return error instanceof IdentSphereError && SESSION_ENDED.has(error.code);
}
