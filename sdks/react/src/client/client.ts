//! The framework-free client: the /v1/auth calls, the session state the UI renders, and the refresh
//! schedule. It reads no browser global at import or construction, so it is safe to create during SSR.
//!
//! Two modes:
//! - `cookie` (the default): every request goes with `credentials: "include"`, so the server's `HttpOnly`
//!   cookies carry the tokens on a `baseUrl` of another origin too (which must answer CORS for this page's);
//!   the tokens in the JSON bodies are dropped on arrival, so no script on the page can read them. The
//!   client only remembers *when* the access token expires, from `expires_in`.
//! - `bearer`: the client keeps the pair in memory and sends `Authorization: Bearer`; an optional
//!   `TokenStorage` keeps it across reloads. No cookie is sent or stored (`credentials: "omit"`), but for
//!   the calls that start a provider flow (see `bindsBrowser`).
//!
//! Sign-in through a provider leaves the page: `signInWith`, `signInWithSso` and `linkIdentity` send the
//! browser away, and the return is handled by `handleRedirect`, which `start()` calls (see `redirect.ts`).

import { CLIENT_ERROR_CODES, IdentSphereError, endsSession, isErrorEnvelope } from "./errors.js";
import { TabSync, type TabMessage } from "./tabs.js";
import {
  clearReturnParams,
  clientError,
  currentUrl,
  pkcePair,
  returnParams,
  returnedError,
  saveFlow,
  takeFlow,
  thisPage,
  type PendingFlow,
} from "./redirect.js";
import type {
  AuthState,
  Ceremony,
  Identity,
  LoginResult,
  LogoutScope,
  MfaRequiredResponse,
  Mode,
  Organization,
  Passkey,
  RedirectResult,
  SessionInfo,
  SsoDiscovery,
  TokenResponse,
  TokenStorage,
  TotpConfirmation,
  TotpEnrollment,
} from "./types.js";
import {
  createCredential,
  getCredential,
  passkeyCancelled,
  requireWebAuthn,
  type PasskeyMediation,
} from "./webauthn.js";

export interface ClientOptions {
  /**
   * Where IdentSphere answers, without a trailing slash; `""` (the default) is this page's origin. Another
   * origin needs no other option: its server must list this page's origin in `IDENTSPHERE_ALLOWED_ORIGINS`
   * (CORS and CSRF), and cookie mode on another site needs `IDENTSPHERE_COOKIE_SAMESITE=none`.
   */
  baseUrl?: string;
  /** `cookie` (default) or `bearer`. */
  mode?: Mode;
  /** Bearer mode: where the token pair is kept between page loads. Without it, memory only. */
  storage?: TokenStorage;
  /**
   * Coordinate refreshes and sign-out with the other tabs of this origin. Default: on in cookie mode (the
   * tabs share the cookie jar, hence the session); in bearer mode turn it on only when the tabs share the
   * `storage` (e.g. `localStorage`), otherwise each tab has a session of its own.
   */
  syncTabs?: boolean;
  /** The `fetch` to use; default the global one, looked up at call time. */
  fetch?: typeof fetch;
  /**
   * How the browser is sent to a provider (`signInWith`, `signInWithSso`, `linkIdentity`); default
   * `window.location.assign`, looked up at call time.
   */
  navigate?: (url: string) => void;
}

interface BearerTokens {
  accessToken: string;
  refreshToken: string;
  /** Milliseconds since the epoch, on this machine's clock. */
  expiresAt: number;
}

interface RequestOptions {
  body?: unknown;
  /** Send the bearer access token (bearer mode; in cookie mode the browser decides what to send). */
  auth?: boolean;
  /**
   * The response starts a provider flow and sets its browser-binding cookie, which the browser must keep
   * whatever the mode: the provider's callback must bring it back (`credentials: "include"`).
   */
  bindsBrowser?: boolean;
}

const STORAGE_KEY = "identsphere.tokens";
/** The most a refresh is made ahead of expiry; shorter lifetimes refresh at three quarters. */
const MAX_REFRESH_MARGIN_MS = 60_000;
/** Wait before retrying a refresh that failed without ending the session (network, 5xx, rate limit). */
const RETRY_DELAY_MS = 5_000;
const SIGNED_OUT: AuthState = { status: "signed-out" };

/**
 * When an access token received now with `expires_in` seconds expires, on this machine's clock. The token's
 * `exp` is whole seconds, counted from the server's current second, so the token may end up to a second
 * before `expires_in` says: the client counts one second less.
 */
export function accessExpiry(expiresInSeconds: number, now = Date.now()): number {
  return now + Math.max(0, expiresInSeconds - 1) * 1000;
}

/** When to refresh an access token that expires in `remainingMs`. */
export function refreshDelay(remainingMs: number): number {
  return Math.max(0, remainingMs - Math.min(MAX_REFRESH_MARGIN_MS, remainingMs / 4));
}

export class IdentSphereClient {
  readonly mode: Mode;
  private readonly baseUrl: string;
  private readonly storage: TokenStorage | undefined;
  private readonly syncTabs: boolean;
  private readonly fetchImpl: typeof fetch;
  private readonly navigate: (url: string) => void;

  private state: AuthState = { status: "loading" };
  private readonly listeners = new Set<() => void>();
  private tokens: BearerTokens | null = null;
  /** When the current access token expires (ms since the epoch); also names the refresh round. */
  private expiresAt: number | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private refreshing: Promise<SessionInfo> | null = null;
  private tabs: TabSync | null = null;
  /** Between start() and stop(): only then are refreshes scheduled, so a discarded client stops refreshing. */
  private running = false;
  /** Aborts the passkey request this client has open in the browser (see `passkeyCeremony`). */
  private pendingCeremony: AbortController | null = null;
  /** The return from a provider this page was loaded with, handled once (see `handleRedirect`). */
  private redirect: Promise<RedirectResult | null> | null = null;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? "").replace(/\/+$/, "");
    this.mode = options.mode ?? "cookie";
    this.storage = options.storage;
    this.syncTabs = options.syncTabs ?? this.mode === "cookie";
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.navigate = options.navigate ?? leavePage;
  }

  /** Where this tab keeps the provider flow it started, across the navigations. */
  private get flowKey(): string {
    return `identsphere:${this.baseUrl || "same-origin"}:flow`;
  }

  /** The current state; the same object until it changes (for `useSyncExternalStore`). */
  getState = (): AuthState => this.state;

  /** Calls `listener` after each state change; returns the unsubscribe function. */
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Bearer mode: the access token to send to your own API; `null` in cookie mode or when signed out. */
  getAccessToken(): string | null {
    return this.tokens?.accessToken ?? null;
  }

  /**
   * Finds out whether a session exists (page load), joins the other tabs and starts the refresh schedule
   * (until stop(); a client never started refreshes only when a call finds its access token expired).
   * First it handles the page's return from a provider (`handleRedirect`: a one-time code is exchanged for
   * the session before the state leaves `loading`). Never rejects: a failure leaves the state `signed-out`,
   * and what the return came to (an error, a second factor due) is `handleRedirect()`'s answer.
   */
  async start(): Promise<AuthState> {
    this.running = true;
    if (this.syncTabs && !this.tabs) {
      this.tabs = new TabSync(`identsphere:${this.baseUrl || "same-origin"}`, (m) => this.onTabMessage(m));
    }
    const returned = await this.handleRedirect().catch(() => null);
    // Signed in by the return's code: the state, the other tabs and the schedule are set already.
    if (returned?.status === "signed-in") return this.state;
    try {
      if (this.mode === "bearer") {
        this.tokens = await this.loadTokens();
        if (!this.tokens) return this.setSignedOut();
        this.expiresAt = this.tokens.expiresAt;
      }
      const info = await this.withFreshAccess(() => this.request<SessionInfo>("GET", "/v1/auth/session", { auth: true }));
      const expiresAt = this.expiresAt ?? this.tabs?.knownExpiry(Date.now()) ?? null;
      if (expiresAt === null) {
        // Cookie mode on a fresh page with no tab to ask: the expiry is unknown, so rotate now to learn it.
        await this.refresh();
      } else {
        this.expiresAt = expiresAt;
        this.setState(signedInState(info));
        this.schedule(expiresAt);
      }
    } catch (error) {
      if (endsSession(error)) await this.forget();
      this.setSignedOut();
    }
    return this.state;
  }

  /** Stops the refresh schedule and leaves the other tabs; the session itself stays. */
  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.tabs?.close();
    this.tabs = null;
  }

  /** `POST /v1/auth/register`: creates the account and signs in. */
  async register(input: {
    email: string;
    password: string;
    display_name?: string;
    organization?: string;
  }): Promise<SessionInfo> {
    return this.signedIn(await this.request<TokenResponse>("POST", "/v1/auth/register", { body: input }), null);
  }

  /**
   * `POST /v1/auth/login`: signs in, or reports that a second factor is due (then call `verifyMfa` or
   * `verifyMfaWithPasskey`).
   */
  async login(input: { email: string; password: string; organization?: string }): Promise<LoginResult> {
    return this.loginResult(
      await this.request<TokenResponse | MfaRequiredResponse>("POST", "/v1/auth/login", { body: input }),
    );
  }

  /**
   * Signs in with a passkey (`POST /v1/auth/passkeys/authentication/options`, the browser's
   * `navigator.credentials.get`, `POST /v1/auth/passkeys/authentication`); answers like `login`. The browser
   * offers the passkeys it holds for the server's RP ID: no email is typed. `mediation: "conditional"` offers
   * them in the autofill of an `<input autocomplete="username webauthn">` instead of a dialog: the promise
   * waits until the user picks one, `signal` aborts, or a later passkey call of this client takes over.
   */
  async signInWithPasskey(
    input: { organization?: string; mediation?: PasskeyMediation; signal?: AbortSignal } = {},
  ): Promise<LoginResult> {
    const { mediation, signal, ...body } = input;
    return this.passkeyCeremony(signal, mediation, async (ceremonySignal) => {
      const { ceremony_id, publicKey } = await this.request<Ceremony<PublicKeyCredentialRequestOptionsJSON>>(
        "POST",
        "/v1/auth/passkeys/authentication/options",
        { body },
      );
      const credential = await getCredential(publicKey, ceremonySignal, mediation);
      return this.loginResult(
        await this.request<TokenResponse | MfaRequiredResponse>("POST", "/v1/auth/passkeys/authentication", {
          body: { ceremony_id, credential, ...body },
        }),
      );
    });
  }

  /**
   * `POST /v1/auth/mfa/verify` with a code (TOTP or recovery). With the `mfaToken` of `login`: completes that
   * sign-in. Without: step-up of the current session to `aal2` (same session id).
   */
  verifyMfa(input: { code: string; mfaToken?: string }): Promise<SessionInfo> {
    return this.secondFactor({ code: input.code }, input.mfaToken);
  }

  /**
   * `verifyMfa` with a passkey as the second factor: with the `mfaToken` of a sign-in whose `factors` include
   * `passkey`, completes it; without, steps the current session up to `aal2`. The options list the user's
   * passkeys, so the browser offers only those.
   */
  verifyMfaWithPasskey(input: { mfaToken?: string; signal?: AbortSignal } = {}): Promise<SessionInfo> {
    const { mfaToken, signal } = input;
    const stepUp = mfaToken === undefined;
    const options = () =>
      this.request<Ceremony<PublicKeyCredentialRequestOptionsJSON>>("POST", "/v1/auth/passkeys/authentication/options", {
        body: stepUp ? { step_up: true } : { mfa_token: mfaToken },
        auth: stepUp,
      });
    return this.passkeyCeremony(signal, undefined, async (ceremonySignal) => {
      // Only the session's access token may need a refresh: an expired mfa token means signing in again.
      const { ceremony_id, publicKey } = await (stepUp ? this.withFreshAccess(options) : options());
      const credential = await getCredential(publicKey, ceremonySignal);
      return this.secondFactor({ passkey: { ceremony_id, credential } }, mfaToken);
    });
  }

  /** `POST /v1/auth/mfa/verify` with `factor`: with a sign-in's mfa token, completes it; without, a step-up. */
  private async secondFactor(factor: object, mfaToken: string | undefined): Promise<SessionInfo> {
    if (mfaToken !== undefined) {
      const body = { mfa_token: mfaToken, ...factor };
      return this.signedIn(await this.request<TokenResponse>("POST", "/v1/auth/mfa/verify", { body }), null);
    }
    const organization = this.currentOrganization();
    const response = await this.withFreshAccess(() =>
      this.request<TokenResponse>("POST", "/v1/auth/mfa/verify", { body: this.withRefreshToken(factor), auth: true }),
    );
    return this.signedIn(response, organization);
  }

  /**
   * Registers a passkey for the signed-in user: `POST /v1/auth/passkeys/registration/options`, the browser's
   * `navigator.credentials.create`, `POST /v1/auth/passkeys/registration`. The session must have signed in
   * within the server's reauthentication window (10 minutes by default), or `password` is needed
   * (`reauthentication_required` otherwise). `name` defaults to `Passkey` on the server.
   */
  registerPasskey(input: { name?: string; password?: string; signal?: AbortSignal } = {}): Promise<Passkey> {
    const { signal, ...body } = input;
    return this.passkeyCeremony(signal, undefined, async (ceremonySignal) => {
      const { ceremony_id, publicKey } = await this.withFreshAccess(() =>
        this.request<Ceremony<PublicKeyCredentialCreationOptionsJSON>>(
          "POST",
          "/v1/auth/passkeys/registration/options",
          { body, auth: true },
        ),
      );
      const credential = await createCredential(publicKey, ceremonySignal);
      return this.withFreshAccess(() =>
        this.request<Passkey>("POST", "/v1/auth/passkeys/registration", {
          body: { ceremony_id, credential },
          auth: true,
        }),
      );
    });
  }

  /** `GET /v1/auth/passkeys`: the user's passkeys, oldest first. */
  async listPasskeys(): Promise<Passkey[]> {
    const { passkeys } = await this.withFreshAccess(() =>
      this.request<{ passkeys: Passkey[] }>("GET", "/v1/auth/passkeys", { auth: true }),
    );
    return passkeys;
  }

  /** `PATCH /v1/auth/passkeys/{id}`: 1 to 100 characters. */
  renamePasskey(id: string, name: string): Promise<Passkey> {
    return this.withFreshAccess(() =>
      this.request<Passkey>("PATCH", `/v1/auth/passkeys/${encodeURIComponent(id)}`, { body: { name }, auth: true }),
    );
  }

  /**
   * `DELETE /v1/auth/passkeys/{id}`: from an `aal2` session or a recent sign-in, else with `password`
   * (`reauthentication_required` otherwise).
   */
  deletePasskey(id: string, input: { password?: string } = {}): Promise<void> {
    // Without the password, no body at all: the server's body, when there is one, is the password.
    const body = input.password === undefined ? undefined : { password: input.password };
    return this.withFreshAccess(() =>
      this.request<void>("DELETE", `/v1/auth/passkeys/${encodeURIComponent(id)}`, { body, auth: true }),
    );
  }

  /**
   * Signs in through a provider: sends the browser to `GET /v1/auth/oauth/{provider}/authorize`, which goes
   * on to the provider; the browser comes back to `redirectUri` (default: this page), where `start()` (or
   * `handleRedirect()`) finishes the sign-in. In cookie mode IdentSphere has set the session cookies by
   * then, or hands a one-time `code` when a second factor is due; in bearer mode it always hands a `code`,
   * which only this tab can exchange: the authorize call carries a PKCE `code_challenge` whose verifier stays
   * in this tab's `sessionStorage`. `provider` is a platform provider's name (`google`, `github`, …) or
   * `sso:<connection id>`; `organization` (id or slug) is the organization to sign in to. `redirectUri` must be
   * one of the server's `IDENTSPHERE_ALLOWED_REDIRECT_URIS`. Resolves once the browser is on its way.
   */
  async signInWith(provider: string, options: { redirectUri?: string; organization?: string } = {}): Promise<void> {
    const query = new URLSearchParams({ redirect_uri: options.redirectUri ?? thisPage() });
    if (options.organization !== undefined) query.set("organization", options.organization);
    const pkce = this.mode === "bearer" ? await pkcePair() : null;
    if (pkce) query.set("code_challenge", pkce.challenge);
    const url = `${this.baseUrl}/v1/auth/oauth/${pathSegment(provider)}/authorize?${query}`;
    this.leave(url, pkce ? { kind: "sign-in", verifier: pkce.verifier } : { kind: "sign-in" });
  }

  /**
   * Enterprise SSO: asks IdentSphere for the connection of the address's domain (`POST
   * /v1/auth/sso/discover`) and sends the browser to its sign-in; the return is handled as `signInWith`'s.
   * Rejects with `connection_not_found` when the domain has no connection: sign in with a password then.
   */
  async signInWithSso(email: string, options: { redirectUri?: string } = {}): Promise<void> {
    const body: { email: string; redirect_uri: string; code_challenge?: string } = {
      email,
      redirect_uri: options.redirectUri ?? thisPage(),
    };
    const pkce = this.mode === "bearer" ? await pkcePair() : null;
    if (pkce) body.code_challenge = pkce.challenge;
    const { authorize_url } = await this.request<SsoDiscovery>("POST", "/v1/auth/sso/discover", {
      body,
      bindsBrowser: true,
    });
    this.leave(authorize_url, pkce ? { kind: "sign-in", verifier: pkce.verifier } : { kind: "sign-in" });
  }

  /**
   * Links a provider identity to the signed-in account (`POST /v1/auth/identities/{provider}/link`) and sends
   * the browser to the provider; it comes back to `redirectUri` (default: this page), where
   * `handleRedirect()` answers `{status: "linked", provider}`, or rejects with `identity_taken` when the
   * identity is another account's. Needs a sign-in within the server's reauthentication window
   * (`reauthentication_required`).
   */
  async linkIdentity(provider: string, options: { redirectUri?: string } = {}): Promise<void> {
    const body = { redirect_uri: options.redirectUri ?? thisPage() };
    const { authorize_url } = await this.withFreshAccess(() =>
      this.request<{ authorize_url: string }>("POST", `/v1/auth/identities/${pathSegment(provider)}/link`, {
        body,
        auth: true,
        bindsBrowser: true,
      }),
    );
    this.leave(authorize_url, { kind: "link" });
  }

  /** `GET /v1/auth/identities`: the provider identities linked to the account, oldest first. */
  async listIdentities(): Promise<Identity[]> {
    const { identities } = await this.withFreshAccess(() =>
      this.request<{ identities: Identity[] }>("GET", "/v1/auth/identities", { auth: true }),
    );
    return identities;
  }

  /**
   * `DELETE /v1/auth/identities/{id}`: after a recent sign-in, else with `password`
   * (`reauthentication_required`); never the account's last way to sign in (`last_sign_in_method`).
   */
  unlinkIdentity(id: string, input: { password?: string } = {}): Promise<void> {
    const body = input.password === undefined ? undefined : { password: input.password };
    return this.withFreshAccess(() =>
      this.request<void>("DELETE", `/v1/auth/identities/${encodeURIComponent(id)}`, { body, auth: true }),
    );
  }

  /**
   * What this page's return from a provider came to. The page's address is read once per client, and only
   * when this tab started a flow (`signInWith`, `signInWithSso`, `linkIdentity`) in the last 10 minutes:
   * otherwise `code`, `error` and `linked` are the app's own parameters and stay. The return's parameters
   * are then taken out of the address (`history.replaceState`), so a reload does not replay them, and:
   * - `?code=`: exchanged at `POST /v1/auth/oauth/token` (with the PKCE verifier in bearer mode), answered
   *   like `login`: `signed-in`, or `mfa-required` (then `verifyMfa`);
   * - `?linked=<provider>`: `{status: "linked", provider}`;
   * - `?error=<code>`: rejects with an `IdentSphereError` of that catalog code (type `redirect_error`);
   * - nothing (cookie mode, signed in by the cookies; or the user came back without finishing): `null`.
   * `start()` calls it; call it yourself for the answer: every call gets the same promise.
   */
  handleRedirect(): Promise<RedirectResult | null> {
    this.redirect ??= this.finishRedirect();
    return this.redirect;
  }

  private async finishRedirect(): Promise<RedirectResult | null> {
    const url = currentUrl();
    if (!url) return null;
    // Forgotten whatever the address says: a flow is either coming back now or abandoned.
    const flow = takeFlow(this.flowKey);
    const params = returnParams(url);
    if (!flow || !params) return null;
    clearReturnParams(url);
    if (params.error !== undefined) throw returnedError(params.error);
    if (flow.kind === "link") return params.linked === undefined ? null : { status: "linked", provider: params.linked };
    if (params.code === undefined) return null;
    const body = flow.verifier === undefined ? { code: params.code } : { code: params.code, code_verifier: flow.verifier };
    return this.loginResult(
      await this.request<TokenResponse | MfaRequiredResponse>("POST", "/v1/auth/oauth/token", { body }),
    );
  }

  /** Remembers `flow` in this tab and sends the browser to `url`. */
  private leave(url: string, flow: Omit<PendingFlow, "expiresAt">): void {
    if (!saveFlow(this.flowKey, flow) && flow.verifier !== undefined) {
      throw clientError(CLIENT_ERROR_CODES.redirectUnsupported, "no sessionStorage to keep the PKCE verifier in");
    }
    // This page is being left: its own address is no return to handle any more, and a handleRedirect
    // called while the browser navigates must not take the flow just saved.
    this.redirect ??= Promise.resolve(null);
    this.navigate(url);
  }

  /**
   * Runs a passkey ceremony, giving it the signal for its browser request, once the browser is known to
   * support it. A page runs one WebAuthn request at a time (a second one fails while the first is open, as a
   * conditional request stays open in the autofill), so a new ceremony aborts this client's pending one first.
   * `signal` aborts this one.
   */
  private async passkeyCeremony<T>(
    signal: AbortSignal | undefined,
    mediation: PasskeyMediation | undefined,
    run: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    await requireWebAuthn(mediation);
    // Aborted meanwhile (say, by a component that unmounted): no ceremony, and the open one stays open.
    if (signal?.aborted) throw passkeyCancelled("aborted before the ceremony started");
    this.pendingCeremony?.abort();
    const controller = new AbortController();
    this.pendingCeremony = controller;
    // Aborted without the caller's reason: the browser then rejects with an `AbortError`, `passkey_cancelled`.
    const abort = () => controller.abort();
    signal?.addEventListener("abort", abort, { once: true });
    try {
      return await run(controller.signal);
    } finally {
      signal?.removeEventListener("abort", abort);
      if (this.pendingCeremony === controller) this.pendingCeremony = null;
    }
  }

  /** A sign-in's answer (password or passkey): the session, or the second-factor step. */
  private async loginResult(response: TokenResponse | MfaRequiredResponse): Promise<LoginResult> {
    if ("mfa_required" in response) {
      return { status: "mfa-required", mfaToken: response.mfa_token, factors: response.factors };
    }
    return { status: "signed-in", ...(await this.signedIn(response, null)) };
  }

  /** `POST /v1/auth/mfa/totp`: starts TOTP enrollment for the signed-in user. */
  enrollTotp(): Promise<TotpEnrollment> {
    return this.withFreshAccess(() => this.request<TotpEnrollment>("POST", "/v1/auth/mfa/totp", { auth: true }));
  }

  /**
   * `POST /v1/auth/mfa/totp/confirm`: the first code from the app turns TOTP on; show the recovery codes
   * once. The server raises this session to `aal2` and, when the answer carries the new pair, so does the state.
   */
  async confirmTotp(code: string): Promise<TotpConfirmation> {
    const organization = this.currentOrganization();
    const response = await this.withFreshAccess(() =>
      this.request<TotpConfirmation | (TotpConfirmation & TokenResponse)>("POST", "/v1/auth/mfa/totp/confirm", {
        body: this.withRefreshToken({ code }),
        auth: true,
      }),
    );
    if ("access_token" in response) await this.signedIn(response, organization);
    return { recovery_codes: response.recovery_codes };
  }

  /**
   * A body for a call that answers with a new token pair for this session (step-up, TOTP confirmation): the
   * server hands one out only to who holds the session's refresh token, never for an access token alone. In
   * bearer mode it goes in the body; in cookie mode the browser sends the `identsphere_rt` cookie.
   */
  private withRefreshToken<T extends object>(body: T): T & { refresh_token?: string } {
    return this.mode === "bearer" && this.tokens ? { ...body, refresh_token: this.tokens.refreshToken } : body;
  }

  /**
   * `GET /v1/auth/session`, refreshing once if the access token has expired. Updates the state: a session
   * ended elsewhere (global logout, revocation) signs out.
   */
  async getSession(): Promise<SessionInfo> {
    try {
      const info = await this.withFreshAccess(() =>
        this.request<SessionInfo>("GET", "/v1/auth/session", { auth: true }),
      );
      this.setState(signedInState(info));
      return info;
    } catch (error) {
      if (endsSession(error)) await this.endSession();
      throw error;
    }
  }

  /**
   * `POST /v1/auth/refresh`: a new pair. Single-flight: concurrent calls in this tab share one request (the
   * other tabs are coordinated by the schedule, see `tabs.ts`). A dead session signs out.
   */
  refresh(): Promise<SessionInfo> {
    this.refreshing ??= this.rotate().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  /**
   * `POST /v1/auth/logout`. `local` (default) ends this session and signs out every tab; `global` ends all
   * the user's sessions; `others` ends the other sessions and keeps this one.
   */
  async logout(scope: LogoutScope = "local"): Promise<void> {
    const body = this.tokens ? { scope, refresh_token: this.tokens.refreshToken } : { scope };
    try {
      await this.request<void>("POST", "/v1/auth/logout", { body, auth: true });
    } catch (error) {
      // Dead credentials: the server has nothing left to end (and cleared the cookies).
      if (!endsSession(error)) throw error;
    }
    if (scope !== "others") return this.endSession();
    // The server keeps this session's cookies for `others`; still, ask it whether this session is usable
    // rather than assume (an older server cleared them). The logout itself succeeded, so a failure here is
    // not the caller's error; getSession has already signed out if the session is gone.
    if (this.mode === "cookie") await this.getSession().catch(() => undefined);
  }

  private async rotate(): Promise<SessionInfo> {
    const organization = this.currentOrganization();
    let body: { refresh_token: string } | undefined;
    if (this.mode === "bearer") {
      if (!this.tokens) throw clientSideMissingToken();
      body = { refresh_token: this.tokens.refreshToken };
    }
    try {
      return await this.signedIn(await this.request<TokenResponse>("POST", "/v1/auth/refresh", { body }), organization);
    } catch (error) {
      if (endsSession(error)) await this.endSession();
      throw error;
    }
  }

  /**
   * Takes a token response: keeps the tokens (bearer) or drops them (cookie), fetches the organization unless
   * the session kept its own, tells the other tabs and schedules the next refresh.
   */
  private async signedIn(response: TokenResponse, organization: Organization | null): Promise<SessionInfo> {
    const expiresAt = accessExpiry(response.expires_in);
    if (this.mode === "bearer") {
      this.tokens = { accessToken: response.access_token, refreshToken: response.refresh_token, expiresAt };
      await this.storage?.setItem(STORAGE_KEY, JSON.stringify(this.tokens));
    }
    this.expiresAt = expiresAt;
    const info: SessionInfo =
      organization && organization.id === response.session.organization_id
        ? { user: response.user, session: response.session, organization }
        : await this.sessionAfterSignIn();
    this.setState(signedInState(info));
    this.tabs?.publish({ kind: "signed-in", info, expiresAt });
    this.schedule(expiresAt);
    return info;
  }

  /**
   * The session of the token pair just received. In cookie mode the answer has just set the cookies, so a
   * `token_missing` means the browser kept none or sends none to IdentSphere: the likely cause, named,
   * rather than a code that reads like "sign in first" to a user who just did.
   */
  private async sessionAfterSignIn(): Promise<SessionInfo> {
    try {
      return await this.request<SessionInfo>("GET", "/v1/auth/session", { auth: true });
    } catch (error) {
      if (this.mode !== "cookie" || !(error instanceof IdentSphereError) || error.code !== "token_missing") throw error;
      throw clientError(
        CLIENT_ERROR_CODES.cookiesBlocked,
        "signed in, but the browser did not send IdentSphere's session cookies back: on another site than this page, IdentSphere needs IDENTSPHERE_COOKIE_SAMESITE=none and the browser must allow third-party cookies; the bearer mode needs neither",
      );
    }
  }

  /** Runs `call`; if the access token had expired (or its cookie was dropped), refreshes once and retries. */
  private async withFreshAccess<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      const stale = error instanceof IdentSphereError && (error.code === "token_expired" || error.code === "token_missing");
      if (!stale) throw error;
      await this.refresh();
      return call();
    }
  }

  /** Plans the refresh of the access token expiring at `round`. */
  private schedule(round: number): void {
    this.later(refreshDelay(round - Date.now()), () => this.onRefreshDue(round));
  }

  /** The one refresh timer of this client: replaces the previous one; none after stop(). */
  private later(delayMs: number, task: () => Promise<void>): void {
    clearTimeout(this.timer);
    if (this.running) this.timer = setTimeout(() => void task(), Math.max(0, delayMs));
  }

  private async onRefreshDue(round: number): Promise<void> {
    if (round !== this.expiresAt) return;
    const elected = this.tabs ? await this.tabs.elected(round) : true;
    // Another tab may have finished the round while the election ran.
    if (round !== this.expiresAt) return;
    if (!elected) {
      // The elected tab's result arrives as a message; if it never does (that tab closed mid-refresh), take
      // over when the token expires.
      this.later(round - Date.now(), () => this.refreshNow(round));
      return;
    }
    await this.refreshNow(round);
  }

  private async refreshNow(round: number): Promise<void> {
    if (round !== this.expiresAt) return;
    try {
      await this.refresh();
    } catch (error) {
      if (!endsSession(error)) this.later(RETRY_DELAY_MS, () => this.refreshNow(round));
    }
  }

  private onTabMessage(message: TabMessage): void {
    if (message.kind === "signed-out") {
      void this.forget(false).then(() => this.setSignedOut());
      return;
    }
    if (message.kind !== "signed-in") return;
    const apply = () => {
      this.expiresAt = message.expiresAt;
      this.setState(signedInState(message.info));
      this.schedule(message.expiresAt);
    };
    // Bearer tabs share the storage, where the tab that signed in or refreshed put the new pair.
    if (this.mode === "bearer") void this.loadTokens().then((tokens) => ((this.tokens = tokens), apply()));
    else apply();
  }

  private currentOrganization(): Organization | null {
    return this.state.status === "signed-in" ? this.state.organization : null;
  }

  private async loadTokens(): Promise<BearerTokens | null> {
    const stored = await this.storage?.getItem(STORAGE_KEY);
    if (!stored) return this.tokens;
    try {
      return JSON.parse(stored) as BearerTokens;
    } catch {
      return null;
    }
  }

  /** Signs out here and in the other tabs. */
  private async endSession(): Promise<void> {
    await this.forget();
    this.setSignedOut();
    this.tabs?.publish({ kind: "signed-out" });
  }

  /** Drops what this tab holds of the session; `fromStorage` also clears the shared storage. */
  private async forget(fromStorage = true): Promise<void> {
    clearTimeout(this.timer);
    this.tokens = null;
    this.expiresAt = null;
    if (fromStorage) await this.storage?.removeItem(STORAGE_KEY);
  }

  private setSignedOut(): AuthState {
    this.setState(SIGNED_OUT);
    return this.state;
  }

  private setState(state: AuthState): void {
    this.state = state;
    for (const listener of this.listeners) listener();
  }

  private async request<T>(
    method: "GET" | "POST" | "PATCH" | "DELETE",
    path: string,
    options: RequestOptions = {},
  ): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (options.auth && this.tokens) headers.Authorization = `Bearer ${this.tokens.accessToken}`;
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: options.body === undefined ? null : JSON.stringify(options.body),
        credentials: this.mode === "cookie" || options.bindsBrowser ? "include" : "omit",
      });
    } catch (cause) {
      throw new IdentSphereError({
        code: CLIENT_ERROR_CODES.network,
        type: "client_error",
        message: `${method} ${path}: ${noResponse(this.baseUrl)}`,
        status: 0,
        cause,
      });
    }
    const requestId = response.headers.get("x-request-id") ?? undefined;
    if (response.status === 204) return undefined as T;
    const body: unknown = await response.json().catch(() => undefined);
    if (response.ok && body !== undefined) return body as T;
    if (isErrorEnvelope(body)) throw new IdentSphereError({ ...body.error, status: response.status, requestId });
    throw new IdentSphereError({
      code: CLIENT_ERROR_CODES.unexpectedResponse,
      type: "client_error",
      message: `${method} ${path}: HTTP ${response.status} without the JSON the contract promises`,
      status: response.status,
      requestId,
    });
  }
}

/**
 * The state of a session: user, session and organization, which every sign-in, refresh and tab message
 * carries (the session read's extras, such as `factors`, are only in what getSession returns).
 */
function signedInState({ user, session, organization }: SessionInfo): AuthState {
  return { status: "signed-in", user, session, organization };
}

/**
 * What a request without a response may mean. To another origin, it may also be an answer the browser
 * withheld for want of CORS headers naming this page's origin, which the page cannot tell from a network
 * failure: the message says which setting to check rather than leave a misconfiguration to look like an
 * outage.
 */
function noResponse(baseUrl: string): string {
  const page = (globalThis as { location?: Location }).location?.origin;
  // A relative or empty baseUrl is this page's origin; `URL.canParse` is younger than the browsers served.
  let api: string;
  try {
    api = new URL(baseUrl).origin;
  } catch {
    return "no response";
  }
  if (!page || api === page) return "no response";
  return `no response, or one the browser withheld: IdentSphere at ${api} answers CORS only for the origins in its IDENTSPHERE_ALLOWED_ORIGINS (is ${page} one?)`;
}

/** The browser's own navigation: the page is left for `url`. */
function leavePage(url: string): void {
  const location = (globalThis as { location?: Location }).location;
  if (!location) throw clientError(CLIENT_ERROR_CODES.redirectUnsupported, "no browser page to leave");
  location.assign(url);
}

/** A provider's name as a path segment; `sso:<id>` keeps its colon, which a segment may hold. */
function pathSegment(provider: string): string {
  return encodeURIComponent(provider).replace(/%3A/gi, ":");
}

/** Bearer mode with nothing to refresh: the same code the server would give for a missing credential. */
function clientSideMissingToken(): IdentSphereError {
  return new IdentSphereError({
    code: "token_missing",
    type: "authentication_error",
    message: "no refresh token: sign in first",
    status: 0,
  });
}
