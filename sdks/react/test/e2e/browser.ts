// What the browser tests share: Debian's Chromium, and reading the demo page and its session.
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

import type { SessionInfo } from "../../src/client/index.js";
import { PASSWORD } from "../integration/helpers.js";

/** Chromium, headless. As root it needs --no-sandbox; the rest keeps it off the network this machine lacks. */
const LAUNCH = {
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
};

export function launchChromium(): Promise<Browser> {
  return chromium.launch(LAUNCH);
}

/**
 * A Chromium whose profile allows third-party cookies, as a user's may: Debian's blocks them with a fresh
 * profile (DevTools reports the cookies of a cross-site response blocked for "UserPreferences"), and so do the
 * contexts of `launchChromium`. Its one context is the whole browser: `close` ends it, then removes the profile.
 */
export async function launchChromiumAllowingThirdPartyCookies(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), "identsphere-chromium-"));
  const remove = () => rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
  mkdirSync(join(profile, "Default"));
  // 0 is "allow" in Chromium's cookie controls (the setting's page); the older switch says the same.
  const preferences = { profile: { cookie_controls_mode: 0, block_third_party_cookies: false } };
  writeFileSync(join(profile, "Default", "Preferences"), JSON.stringify(preferences));
  const context = await chromium.launchPersistentContext(profile, LAUNCH).catch((error: unknown) => {
    remove();
    throw error;
  });
  // Once the browser has exited: until then it writes to the profile.
  return { context, close: () => context.close().then(remove) };
}

/** The demo's `useSession().status`. */
export function status(page: Page) {
  return page.getByTestId("status").textContent();
}

/** The demo's `auth_method, aal` of the session. */
export function assurance(page: Page) {
  return page.getByTestId("assurance").textContent();
}

/**
 * What the tab's cookies are worth to the server right now; `api` is IdentSphere's origin when it is not the
 * page's (the page's fetch then needs the server's CORS answer to read the status).
 */
export async function sessionStatus(page: Page, api = "") {
  return page.evaluate(async (api) => (await fetch(`${api}/v1/auth/session`, { credentials: "include" })).status, api);
}

/** The session the tab's cookies belong to, as the server sees it; `api` as sessionStatus's. */
export async function serverSession(page: Page, api = ""): Promise<SessionInfo> {
  return page.evaluate(async (api) => (await fetch(`${api}/v1/auth/session`, { credentials: "include" })).json(), api);
}

/** Fills the demo's (or the README page's) form and presses `button`. */
export async function submitCredentials(
  page: Page,
  email: string,
  password: string,
  button: "Create account" | "Sign in",
) {
  await page.getByPlaceholder("Email").fill(email);
  await page.getByPlaceholder("Password").fill(password);
  await page.getByRole("button", { name: button, exact: true }).click();
}

/** A new account with PASSWORD, registered straight with the server at `identsphereUrl`; its email. */
export async function registeredAccount(identsphereUrl: string, prefix: string): Promise<string> {
  const email = `${prefix}-${randomUUID()}@example.com`;
  const registered = await fetch(`${identsphereUrl}/v1/auth/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  if (registered.status !== 201) throw new Error(`register ${email}: HTTP ${registered.status}`);
  return email;
}
