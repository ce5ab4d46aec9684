// What the browser tests share: Debian's Chromium, and reading the demo page and its session.
import { chromium, type Browser, type Page } from "playwright-core";

import type { SessionInfo } from "../../src/client/index.js";

/** Chromium, headless. As root it needs --no-sandbox; the rest keeps it off the network this machine lacks. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
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
  });
}

/** The demo's `useSession().status`. */
export function status(page: Page) {
  return page.getByTestId("status").textContent();
}

/** The demo's `auth_method, aal` of the session. */
export function assurance(page: Page) {
  return page.getByTestId("assurance").textContent();
}

/** What the tab's cookies are worth to the server right now. */
export async function sessionStatus(page: Page) {
  return page.evaluate(async () => (await fetch("/v1/auth/session", { credentials: "include" })).status);
}

/** The session the tab's cookies belong to, as the server sees it. */
export async function serverSession(page: Page): Promise<SessionInfo> {
  return page.evaluate(async () => (await fetch("/v1/auth/session", { credentials: "include" })).json());
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
