//! The shapes of the contract (/v1/auth), as the client returns them. Field names stay as the server sends
//! them, so the API reference and these types read the same.

export type Mode = "cookie" | "bearer";
export type Aal = "aal1" | "aal2";
export type LogoutScope = "local" | "others" | "global";

export interface User {
  id: string;
  email: string;
  email_verified: boolean;
  display_name: string | null;
  created_at: string;
}

export interface Session {
  /** The session family id (`sid`), the same across refreshes and step-up. */
  id: string;
  organization_id: string;
  aal: Aal;
  auth_method: string;
  auth_time: number;
  /** The family's absolute end: no refresh goes past it. */
  expires_at: string;
}

export interface Organization {
  id: string;
  slug: string;
  name: string;
  role: string;
}

/** `GET /v1/auth/session`. */
export interface SessionInfo {
  user: User;
  session: Session;
  organization: Organization;
  /** The user's active second factors (`GET /v1/auth/session` only; not in token responses). */
  factors?: Factor[];
  /** Unused recovery codes (`GET /v1/auth/session` only). */
  recovery_codes_left?: number;
}

export interface Factor {
  type: "totp";
  confirmed_at: string;
}

/** The token response of register, login, refresh and MFA verification. */
export interface TokenResponse {
  token_type: "Bearer";
  access_token: string;
  expires_in: number;
  refresh_token: string;
  user: User;
  session: Session;
}

/** `POST /v1/auth/login` when a second factor is due. */
export interface MfaRequiredResponse {
  mfa_required: true;
  mfa_token: string;
  factors: string[];
}

export type LoginResult =
  | ({ status: "signed-in" } & SessionInfo)
  | { status: "mfa-required"; mfaToken: string; factors: string[] };

/** `POST /v1/auth/mfa/totp`: what the user scans into an authenticator app. */
export interface TotpEnrollment {
  secret: string;
  otpauth_uri: string;
  qr_svg: string;
}

/** `POST /v1/auth/mfa/totp/confirm`. */
export interface TotpConfirmation {
  recovery_codes: string[];
}

/** A registered passkey (`GET /v1/auth/passkeys`). */
export interface Passkey {
  id: string;
  /** What the user calls it (`Passkey` unless named at registration or renamed). */
  name: string;
  created_at: string;
  last_used_at: string | null;
  /** Synced across the user's devices (the authenticator's backup state). */
  backed_up: boolean;
  /** How the browser reaches it (`internal`, `hybrid`, `usb`, `nfc`, `ble`): hints only. */
  transports: string[];
}

/** A provider identity linked to the account (`GET /v1/auth/identities`). */
export interface Identity {
  id: string;
  /** A platform provider's name (`google`, `github`, …), or `sso:<connection id>`. */
  provider: string;
  /** The address the provider gave at the last sign-in. */
  email: string | null;
  created_at: string;
  last_used_at: string | null;
}

/** `POST /v1/auth/sso/discover`: the organization's connection for an address's domain. */
export interface SsoDiscovery {
  /** Where the browser goes to sign in. */
  authorize_url: string;
  connection_id: string;
  organization_id: string;
}

/**
 * What a return from a provider came to (`handleRedirect`): a sign-in, answered like `login` (`signed-in`, or
 * `mfa-required` with the mfa token for `verifyMfa`), or a linked identity. An `?error=` rejects instead.
 */
export type RedirectResult = LoginResult | { status: "linked"; provider: string };

/** A started passkey ceremony: its id (it lives 5 minutes and works once) and the options for the browser. */
export interface Ceremony<Options> {
  ceremony_id: string;
  publicKey: Options;
}

export type AuthState =
  | { status: "loading" }
  | { status: "signed-out" }
  | { status: "signed-in"; user: User; session: Session; organization: Organization };

/**
 * Where bearer-mode tokens are kept between page loads: the Web Storage shape, so `localStorage`,
 * `sessionStorage` and React Native's `AsyncStorage` fit as they are (each method may return a promise).
 */
export interface TokenStorage {
  getItem(key: string): string | null | Promise<string | null>;
  setItem(key: string, value: string): void | Promise<void>;
  removeItem(key: string): void | Promise<void>;
}
