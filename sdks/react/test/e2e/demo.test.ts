// The demo app in Debian's Chromium. Two tabs share one cookie session through many refresh cycles of a
// 3-second access token (a cycle of 1.5 s): both stay signed in, the server sees about one refresh per cycle
// (its own counters), all rotations, and no two refreshes leave the browser within half a cycle of each other
// (the browser's own request times: two tabs refreshing in the same cycle would be milliseconds apart); when
// the refreshing tab closes the other takes over; signing out in one tab signs the other out. Then the
// README's sign-in page, as printed, and the second factor through the demo's pages. Then passkeys, with
// Chrome's virtual authenticator: registered in the demo, they sign in from the email field's autofill and
// from the button (both with Chromium's own WebAuthn JSON methods and with the client's fallback), and serve
// as the second factor of a password sign-in. Each test has a browser context (cookies, storage) of its own.
import { randomUUID } from "node:crypto";

import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from "vitest";

import { startDemo, type RunningDemo } from "../../scripts/demo.mjs";
import { freePort } from "../../scripts/identsphere.mjs";
import { PASSWORD, totp } from "../integration/helpers.js";
import {
  assurance,
  launchChromium,
  registeredAccount,
  serverSession,
  sessionStatus,
  status,
  submitCredentials,
} from "./browser.js";
import { TTL_SECONDS, watchRefreshCycles } from "./refresh-cycles.js";

const WATCH_MS = 20_000;

let demo: RunningDemo;
let browser: Browser;
let context: BrowserContext;

beforeAll(async () => {
  demo = await startDemo({ port: await freePort(), env: { IDENTSPHERE_ACCESS_TOKEN_TTL: String(TTL_SECONDS) } });
  browser = await launchChromium();
});

// One context per test: its tabs share cookies, localStorage, BroadcastChannel and Web Locks, like a user's
// tabs, and a test that fails signed in leaves the next one signed out all the same.
beforeEach(async () => {
  context = await browser.newContext();
});

afterEach(async () => {
  await context?.close();
});

afterAll(async () => {
  await browser?.close();
  await demo?.stop();
});

const watched = () => ({ context, identsphereUrl: demo.identsphereUrl });

async function openSignedIn() {
  const tab = await context.newPage();
  await tab.goto(demo.url);
  await expect.poll(() => status(tab)).toBe("signed-in");
  return tab;
}

it("two tabs stay signed in through many refreshes, one refresh per cycle, and sign out together", async () => {
  const first = await context.newPage();
  await first.goto(demo.url);
  await expect.poll(() => status(first)).toBe("signed-out");
  await submitCredentials(first, `e2e-${randomUUID()}@example.com`, "correct horse battery staple", "Create account");
  await expect.poll(() => status(first)).toBe("signed-in");

  const second = await openSignedIn();
  expect(await second.getByTestId("user").textContent()).toBe(await first.getByTestId("user").textContent());
  await watchRefreshCycles(watched(), [first, second], WATCH_MS);

  // The first tab holds the refresh lock; when it closes, the second takes over the cycles.
  await first.close();
  await watchRefreshCycles(watched(), [second], 6_000);

  // Sign out in a new tab: the second follows without a reload.
  const third = await openSignedIn();
  await third.getByText("Sign out", { exact: true }).click();
  await expect.poll(() => status(third)).toBe("signed-out");
  await expect.poll(() => status(second), { timeout: 3_000 }).toBe("signed-out");
  expect(await sessionStatus(second)).toBe(401);
});

it("the README's sign-in page signs in, reports a wrong password, and signs out", async () => {
  const email = await registeredAccount(demo.identsphereUrl, "readme");

  const page = await context.newPage();
  await page.goto(`${demo.url}/sign-in.html`);
  await submitCredentials(page, email, "not the password", "Sign in");
  await expect.poll(() => page.getByRole("alert").textContent()).toBe("wrong password or unknown email");

  await page.getByPlaceholder("Password").fill("correct horse battery staple");
  await page.getByText("Sign in").click();
  await expect.poll(() => page.locator("p").first().textContent()).toBe(`Signed in as ${email} Sign out`);

  await page.getByText("Sign out").click();
  await expect.poll(() => page.getByPlaceholder("Email").count()).toBe(1);
  expect(await sessionStatus(page)).toBe(401);
});

it("the demo enrolls TOTP, RequireAal2 steps an older session up, and sign-in asks for the second factor", async () => {
  const email = `mfa-${randomUUID()}@example.com`;
  const password = "correct horse battery staple";
  const laptop = await context.newPage();
  await laptop.goto(demo.url);
  await submitCredentials(laptop, email, password, "Create account");
  await expect.poll(() => status(laptop)).toBe("signed-in");

  // Another browser (its own cookies) signs in before the factor exists: an aal1 session.
  const otherBrowser = await browser.newContext();
  const phone = await otherBrowser.newPage();
  await phone.goto(demo.url);
  await submitCredentials(phone, email, password, "Sign in");
  await expect.poll(() => status(phone)).toBe("signed-in");
  expect(await phone.getByText("Only an aal2 session sees this.").count()).toBe(0);

  await laptop.getByText("Set up two-factor").click();
  const secret = (await laptop.getByTestId("totp-secret").textContent()) ?? "";
  const now = Date.now();
  await laptop.getByPlaceholder("Code from the app").fill(totp(secret, 0, now));
  await laptop.getByText("Turn on").click();
  const recoveryCodes = ((await laptop.getByTestId("recovery-codes").textContent()) ?? "").split("\n");
  expect(recoveryCodes).toHaveLength(10);
  await expect.poll(() => laptop.getByText("Only an aal2 session sees this.").count()).toBe(1);

  // RequireAal2 prompts the older session for a code.
  await phone.reload();
  await phone.getByLabel("Authentication code").fill(totp(secret, 1, now));
  await phone.getByText("Verify", { exact: true }).click();
  await expect.poll(() => phone.getByText("Only an aal2 session sees this.").count()).toBe(1);
  await otherBrowser.close();

  // A password alone no longer signs in: the demo asks for a code (here a recovery code).
  await laptop.getByText("Sign out", { exact: true }).click();
  await submitCredentials(laptop, email, password, "Sign in");
  await laptop.getByPlaceholder("6-digit code").fill(recoveryCodes[0] ?? "");
  await laptop.getByText("Verify", { exact: true }).click();
  await expect.poll(() => status(laptop)).toBe("signed-in");
  await expect.poll(() => laptop.getByText("Only an aal2 session sees this.").count()).toBe(1);
});

/**
 * Chrome's virtual authenticator in `page`'s tab (through CDP): a platform authenticator with resident keys
 * that verifies the user, answering without a dialog. It answers an autofill (conditional) request at once
 * when it holds a passkey for the site, and rejects it when it holds none, so a test that needs the
 * signed-out page with the autofill request open pauses it.
 */
async function virtualAuthenticator(page: Page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });
  const presence = (enabled: boolean) => cdp.send("WebAuthn.setAutomaticPresenceSimulation", { authenticatorId, enabled });
  return {
    credentials: async () => (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials,
    /**
     * Stops answering (no simulated user presence): a request then stays open, as an autofill request does
     * until the user picks a passkey, even after `resume`, which answers the requests made after it.
     */
    async pause() {
      await presence(false);
      return () => presence(true);
    },
  };
}

interface WebAuthnCall {
  mediation: string;
  /** `pending`, `resolved`, or the name of the error it rejected with. */
  outcome: string;
}

/** Makes `page` record each `navigator.credentials.get`: its mediation and how it ended. */
async function recordWebAuthnCalls(page: Page) {
  await page.addInitScript(() => {
    const calls: WebAuthnCall[] = [];
    Object.assign(window, { webauthnCalls: calls });
    const get = navigator.credentials.get.bind(navigator.credentials);
    navigator.credentials.get = (options) => {
      const call = { mediation: options?.mediation ?? "optional", outcome: "pending" };
      calls.push(call);
      const answer = get(options);
      answer.then(
        () => (call.outcome = "resolved"),
        (error: Error) => (call.outcome = error.name),
      );
      return answer;
    };
  });
  return () => page.evaluate(() => (window as unknown as { webauthnCalls: WebAuthnCall[] }).webauthnCalls);
}

/** A new account in the demo, with a passkey registered in `page`'s authenticator; `page` records its gets. */
async function signUpWithPasskey(page: Page) {
  const webauthnCalls = await recordWebAuthnCalls(page);
  const authenticator = await virtualAuthenticator(page);
  const email = `passkey-${randomUUID()}@example.com`;
  await page.goto(demo.url);
  await submitCredentials(page, email, PASSWORD, "Create account");
  await expect.poll(() => assurance(page)).toBe("password, aal1");
  await page.getByText("Register a passkey").click();
  await expect.poll(() => page.getByTestId("passkeys").textContent()).toMatch(/^Passkey, added /);
  expect(await authenticator.credentials()).toHaveLength(1);

  /**
   * Pauses the authenticator and signs out: the sign-in form's autofill request stays open. Resolves once
   * that request has had time to reach the authenticator, with what resumes the authenticator for the
   * requests after it.
   */
  const signOutWithAutofillOpen = async () => {
    const resume = await authenticator.pause();
    await page.getByText("Sign out", { exact: true }).click();
    const open = async () => (await webauthnCalls()).filter((c) => c.mediation === "conditional" && c.outcome === "pending");
    await expect.poll(async () => (await open()).length).toBe(1);
    // From the page's call to the browser's request to the authenticator: resumed before, it would answer.
    await new Promise((r) => setTimeout(r, 300));
    return resume;
  };
  return { email, webauthnCalls, signOutWithAutofillOpen };
}

it.each([
  ["Chromium's WebAuthn JSON methods", false],
  ["the client's fallback for browsers without them", true],
])("a passkey registered in the demo signs in from the autofill and from the button, with %s", async (_, fallback) => {
  const page = await context.newPage();
  if (fallback) {
    await page.addInitScript(() => {
      const pkc = PublicKeyCredential as Partial<typeof PublicKeyCredential>;
      delete pkc.parseCreationOptionsFromJSON;
      delete pkc.parseRequestOptionsFromJSON;
      delete (PublicKeyCredential.prototype as Partial<PublicKeyCredential>).toJSON;
    });
  }
  const { email, webauthnCalls, signOutWithAutofillOpen } = await signUpWithPasskey(page);
  const native = await page.evaluate(() => typeof PublicKeyCredential.prototype.toJSON === "function");
  expect(native).toBe(!fallback);

  // Signed out, the form offers the passkey in the email field's autofill, which the authenticator answers.
  await page.getByText("Sign out", { exact: true }).click();
  await expect.poll(() => assurance(page)).toBe("passkey, aal2");
  expect(await serverSession(page)).toMatchObject({ user: { email }, session: { auth_method: "passkey", aal: "aal2" } });
  expect((await webauthnCalls()).at(-1)).toEqual({ mediation: "conditional", outcome: "resolved" });

  // The button, while the autofill's request is open: the page runs one at a time (a second one fails with
  // "A request is already pending"), so the client aborts the autofill's first.
  const resume = await signOutWithAutofillOpen();
  await resume();
  await page.getByText("Sign in with a passkey").click();
  await expect.poll(() => assurance(page)).toBe("passkey, aal2");
  expect(await serverSession(page)).toMatchObject({ user: { email }, session: { auth_method: "passkey", aal: "aal2" } });
  expect((await webauthnCalls()).slice(-2)).toEqual([
    { mediation: "conditional", outcome: "AbortError" },
    { mediation: "optional", outcome: "resolved" },
  ]);
});

it("a passkey is the second factor of a password sign-in", async () => {
  const page = await context.newPage();
  const { email, webauthnCalls, signOutWithAutofillOpen } = await signUpWithPasskey(page);

  const resume = await signOutWithAutofillOpen();
  await submitCredentials(page, email, PASSWORD, "Sign in");
  // The user's only second factor is the passkey: no code to type.
  await expect.poll(() => page.getByText("Use a passkey").count()).toBe(1);
  expect(await page.getByPlaceholder("6-digit code").count()).toBe(0);
  await resume();
  await page.getByText("Use a passkey").click();
  await expect.poll(() => assurance(page)).toBe("password, aal2");
  expect(await serverSession(page)).toMatchObject({ user: { email }, session: { auth_method: "password", aal: "aal2" } });
  // The form's autofill request ended with the form.
  expect((await webauthnCalls()).slice(-2)).toEqual([
    { mediation: "conditional", outcome: "AbortError" },
    { mediation: "optional", outcome: "resolved" },
  ]);
});
