//! The browser's side of a sign-in through a provider (social or SSO), which leaves the page and comes back:
//! the PKCE pair of bearer mode, the flow this tab started (kept in `sessionStorage` across the two
//! navigations), and the parameters IdentSphere adds to the app's redirect URI (`code`, `error`, `linked`).
//!
//! A return is handled only when this tab started a flow that is still alive: the parameters are the app's
//! own otherwise (an invitation `?code=`, the app's `?error=`), and a link crafted by someone else cannot make
//! the page show an error or spend a code. Nothing here touches a token.

import { CLIENT_ERROR_CODES, IdentSphereError } from "./errors.js";
import { base64urlEncode } from "./webauthn.js";

/** What this tab started, kept until the browser comes back. */
export interface PendingFlow {
  /** A sign-in (its return is a session, a `code` or an `error`) or a link (`linked` or an `error`). */
  kind: "sign-in" | "link";
  /** Bearer mode's PKCE verifier, whose challenge the authorize call carried. */
  verifier?: string;
  /** Milliseconds since the epoch: the server forgets the flow after 10 minutes, so does the tab. */
  expiresAt: number;
}

/** The server keeps a flow 10 minutes; its return cannot come later. */
const FLOW_TTL_MS = 10 * 60_000;

/** What the server adds to the redirect URI, plus `state`, which a return must not carry back either. */
const RETURN_PARAMS = ["code", "error", "state", "linked"];

/** The parameters of a return, as the server sends them. */
export interface ReturnParams {
  code?: string;
  error?: string;
  linked?: string;
}

/** A PKCE pair (RFC 7636, S256): 32 random bytes as the verifier (43 characters), its SHA-256 the challenge. */
export async function pkcePair(): Promise<{ verifier: string; challenge: string }> {
  const crypto = globalThis.crypto;
  if (typeof crypto?.subtle?.digest !== "function" || typeof crypto.getRandomValues !== "function") {
    throw clientError(
      CLIENT_ERROR_CODES.pkceUnsupported,
      "bearer mode signs in through a provider with PKCE, which needs WebCrypto: the page must be https:// or localhost",
    );
  }
  const verifier = base64urlEncode(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: base64urlEncode(digest) };
}

/** This page's URL, or `null` without a browser page (server rendering, React Native). */
export function currentUrl(): URL | null {
  const href = (globalThis as { location?: { href?: unknown } }).location?.href;
  return typeof href === "string" ? new URL(href) : null;
}

/** The default redirect URI: this page, without its fragment (refused by the server) or a return's parameters. */
export function thisPage(): string {
  const url = currentUrl();
  if (!url) throw clientError(CLIENT_ERROR_CODES.redirectUnsupported, "no page to come back to: pass redirectUri");
  url.hash = "";
  for (const name of RETURN_PARAMS) url.searchParams.delete(name);
  return url.toString();
}

/** The return parameters in `url`, or `null` when it has none. */
export function returnParams(url: URL): ReturnParams | null {
  const found: ReturnParams = {};
  for (const name of ["code", "error", "linked"] as const) {
    const value = url.searchParams.get(name);
    if (value !== null) found[name] = value;
  }
  return Object.keys(found).length > 0 ? found : null;
}

/**
 * Takes the return's parameters out of the address bar (`history.replaceState`, no navigation), so that a
 * reload, a bookmark or a shared link does not carry a spent code or an old error.
 */
export function clearReturnParams(url: URL): void {
  const cleaned = new URL(url);
  for (const name of RETURN_PARAMS) cleaned.searchParams.delete(name);
  const history = (globalThis as { history?: History }).history;
  history?.replaceState(history.state, "", cleaned.toString());
}

/** `sessionStorage`, unless absent (a server) or refused (privacy modes throw on access). */
function flowStorage(): Storage | null {
  try {
    return typeof sessionStorage === "undefined" ? null : sessionStorage;
  } catch {
    return null;
  }
}

/**
 * Remembers the flow this tab is starting; `false` when the tab has no `sessionStorage` (the return will then
 * not be handled).
 */
export function saveFlow(key: string, flow: Omit<PendingFlow, "expiresAt">, now = Date.now()): boolean {
  const storage = flowStorage();
  if (!storage) return false;
  try {
    storage.setItem(key, JSON.stringify({ ...flow, expiresAt: now + FLOW_TTL_MS } satisfies PendingFlow));
    return true;
  } catch {
    return false;
  }
}

/** The flow this tab started, if it is still alive; it is forgotten either way (a return is handled once). */
export function takeFlow(key: string, now = Date.now()): PendingFlow | null {
  const storage = flowStorage();
  const stored = storage?.getItem(key);
  if (!stored) return null;
  storage?.removeItem(key);
  try {
    const flow = JSON.parse(stored) as PendingFlow;
    return typeof flow.expiresAt === "number" && flow.expiresAt > now ? flow : null;
  } catch {
    return null;
  }
}

/** The `?error=` of a return: the catalog code is all the URL carries. */
export function returnedError(code: string): IdentSphereError {
  // The URL is anyone's to write: only a code-shaped value is repeated.
  const valid = /^[a-z0-9_]{1,64}$/.test(code);
  return new IdentSphereError({
    code: valid ? code : CLIENT_ERROR_CODES.unexpectedResponse,
    type: "redirect_error",
    message: valid ? `the sign-in came back with ${code}` : "the sign-in came back with an error that is not a code",
    status: 0,
  });
}

export function clientError(code: string, message: string): IdentSphereError {
  return new IdentSphereError({ code, type: "client_error", message, status: 0 });
}
