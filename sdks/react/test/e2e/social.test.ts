// Sign-in through a provider in Debian's Chromium: the demo app, a real IdentSphere configured with the mock
// OpenID Connect provider of oidc-provider.ts (real RS256 ID tokens, PKCE, one-time codes), and the browser
// following every redirect: the demo → IdentSphere's authorize → the provider → IdentSphere's callback → the
// demo. Cookie mode lands signed in by the cookies; bearer mode collects the sign-in with the one-time code
// and its PKCE verifier; a user with a second factor collects it with the code and the browser's binding
// cookie, then types a TOTP code; a return with `?error=` shows the error; a bearer-mode link comes back
// `?linked=` and the provider then signs in to that account. Each test has a browser context of its own.
import { createHash, randomUUID } from "node:crypto";

import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from "vitest";

import { startDemo, type RunningDemo } from "../../scripts/demo.mjs";
import { freePort } from "../../scripts/identsphere.mjs";
import { PASSWORD, totp } from "../integration/helpers.js";
import { assurance, launchChromium, serverSession, status, submitCredentials } from "./browser.js";
import { startMockProvider, type MockProvider, type ProviderUser } from "./oidc-provider.js";

let provider: MockProvider;
let demo: RunningDemo;
let browser: Browser;
let context: BrowserContext;

beforeAll(async () => {
  provider = await startMockProvider();
  const port = await freePort();
  demo = await startDemo({
    port,
    env: {
      IDENTSPHERE_OAUTH_MOCK_ISSUER: provider.issuer,
      IDENTSPHERE_OAUTH_MOCK_CLIENT_ID: provider.clientId,
      IDENTSPHERE_OAUTH_MOCK_CLIENT_SECRET: provider.clientSecret,
      // Where a sign-in may come back to: the demo's origin, any path on it.
      IDENTSPHERE_ALLOWED_REDIRECT_URIS: `http://localhost:${port}`,
    },
  });
  browser = await launchChromium();
});

beforeEach(async () => {
  context = await browser.newContext();
});

afterEach(async () => {
  await context?.close();
});

afterAll(async () => {
  await browser?.close();
  await demo?.stop();
  await provider?.stop();
});

/** Someone new at the provider, with a verified address. */
function someone(): ProviderUser {
  return { sub: randomUUID(), email: `social-${randomUUID()}@example.com`, email_verified: true, name: "Grace" };
}

const s256 = (verifier: string) => createHash("sha256").update(verifier).digest("base64url");

/**
 * Records what `page` asks of IdentSphere's provider routes: the authorize navigations' URLs and the one-time
 * code exchanges' bodies.
 */
function recordProviderRequests(page: Page) {
  const seen = { authorize: [] as URL[], exchanges: [] as Record<string, string>[] };
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.pathname === "/v1/auth/oauth/mock/authorize") seen.authorize.push(url);
    if (url.pathname === "/v1/auth/oauth/token") seen.exchanges.push(JSON.parse(request.postData() ?? "{}"));
  });
  return seen;
}

/** The bearer-mode demo's session, read by the server with the access token the page keeps. */
async function bearerSession(page: Page) {
  return page.evaluate(async () => {
    const { accessToken } = JSON.parse(sessionStorage.getItem("identsphere.tokens") ?? "{}");
    const response = await fetch("/v1/auth/session", { headers: { Authorization: `Bearer ${accessToken}` } });
    return response.json();
  });
}

it("cookie mode: signing in at the provider comes back signed in, a social_oauth session with its address", async () => {
  const page = await context.newPage();
  const seen = recordProviderRequests(page);
  await page.goto(demo.url);
  await expect.poll(() => status(page)).toBe("signed-out");

  const grace = someone();
  provider.signInAs(grace);
  await page.getByText("Sign in with mock").click();
  await expect.poll(() => status(page)).toBe("signed-in");
  expect(await page.getByTestId("user").textContent()).toBe(grace.email);
  expect(await assurance(page)).toBe("social_oauth, aal1");
  expect(await serverSession(page)).toMatchObject({
    user: { email: grace.email, email_verified: true, display_name: "Grace" },
    session: { auth_method: "social_oauth", aal: "aal1" },
  });

  // No PKCE of the app's in cookie mode: IdentSphere set the cookies at its callback and sent the browser back
  // to the page as it left it, with nothing to exchange.
  expect(seen.authorize).toHaveLength(1);
  expect(Object.fromEntries(seen.authorize[0]?.searchParams ?? [])).toEqual({ redirect_uri: `${demo.url}/` });
  expect(seen.exchanges).toEqual([]);
  expect(page.url()).toBe(`${demo.url}/`);
  const names = (await context.cookies()).map((c) => c.name);
  expect(names).toEqual(expect.arrayContaining(["identsphere_at", "identsphere_rt"]));
  await expect.poll(() => page.getByTestId("identities").textContent()).toBe(`mock: ${grace.email}`);
});

it("bearer mode: the return's one-time code is exchanged with the PKCE verifier, once, and no cookie holds the session", async () => {
  const page = await context.newPage();
  const seen = recordProviderRequests(page);
  await page.goto(`${demo.url}/?mode=bearer`);
  await expect.poll(() => status(page)).toBe("signed-out");

  const grace = someone();
  provider.signInAs(grace);
  await page.getByText("Sign in with mock").click();
  await expect.poll(() => status(page)).toBe("signed-in");
  expect(await page.getByTestId("user").textContent()).toBe(grace.email);
  expect(await assurance(page)).toBe("social_oauth, aal1");
  expect(await bearerSession(page)).toMatchObject({
    user: { email: grace.email },
    session: { auth_method: "social_oauth", aal: "aal1" },
  });

  const challenge = seen.authorize[0]?.searchParams.get("code_challenge");
  expect(challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(seen.exchanges).toHaveLength(1);
  const [{ code, code_verifier } = {}] = seen.exchanges;
  expect(code).toBeTruthy();
  expect(code_verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(s256(code_verifier ?? "")).toBe(challenge);
  // The code left the address bar; the mode the page had stayed.
  expect(page.url()).toBe(`${demo.url}/?mode=bearer`);
  const names = (await context.cookies()).map((c) => c.name);
  expect(names).not.toContain("identsphere_at");
  expect(names).not.toContain("identsphere_rt");

  // A reload keeps the session (the tab's storage) and exchanges nothing again.
  await page.reload();
  await expect.poll(() => status(page)).toBe("signed-in");
  expect(seen.exchanges).toHaveLength(1);
});

it("a return with ?error= shows the error, leaves the address clean, and a reload does not show it again", async () => {
  const page = await context.newPage();
  await page.goto(demo.url);
  await expect.poll(() => status(page)).toBe("signed-out");
  const alert = () => page.getByRole("alert").textContent();

  // An address the provider does not vouch for never signs in.
  provider.signInAs({ ...someone(), email_verified: false });
  await page.getByText("Sign in with mock").click();
  await expect.poll(alert).toMatch(/^oauth_email_unverified: /);
  expect(page.url()).toBe(`${demo.url}/`);
  expect(await status(page)).toBe("signed-out");

  // An ID token signed by another key under the provider's kid: the signature is checked.
  provider.signInAs(someone());
  provider.misbehave("forged-signature");
  await page.getByText("Sign in with mock").click();
  await expect.poll(alert).toMatch(/^oauth_provider_error: /);
  expect(page.url()).toBe(`${demo.url}/`);
  expect(await status(page)).toBe("signed-out");

  await page.reload();
  await expect.poll(() => status(page)).toBe("signed-out");
  expect(await page.getByRole("alert").count()).toBe(0);
});

it("cookie mode with a second factor: the return's code and the browser's binding cookie lead to the TOTP step", async () => {
  const page = await context.newPage();
  const seen = recordProviderRequests(page);
  await page.goto(demo.url);
  const grace = someone();
  provider.signInAs(grace);
  await page.getByText("Sign in with mock").click();
  await expect.poll(() => status(page)).toBe("signed-in");

  await page.getByText("Set up two-factor").click();
  const secret = (await page.getByTestId("totp-secret").textContent()) ?? "";
  const now = Date.now();
  await page.getByPlaceholder("Code from the app").fill(totp(secret, 0, now));
  await page.getByText("Turn on").click();
  await expect.poll(() => page.getByTestId("recovery-codes").count()).toBe(1);
  await page.getByText("Sign out", { exact: true }).click();
  await expect.poll(() => status(page)).toBe("signed-out");

  await page.getByText("Sign in with mock").click();
  await expect.poll(() => page.getByPlaceholder("6-digit code").count()).toBe(1);
  expect(seen.exchanges).toHaveLength(1);
  expect(Object.keys(seen.exchanges[0] ?? {})).toEqual(["code"]);
  expect(page.url()).toBe(`${demo.url}/`);
  await page.getByPlaceholder("6-digit code").fill(totp(secret, 1, now));
  await page.getByText("Verify", { exact: true }).click();
  await expect.poll(() => assurance(page)).toBe("social_oauth, aal2");
  expect(await serverSession(page)).toMatchObject({ user: { email: grace.email }, session: { aal: "aal2" } });
});

it("bearer mode links the provider to a password account, which the provider then signs in to", async () => {
  const page = await context.newPage();
  await page.goto(`${demo.url}/?mode=bearer`);
  const email = `linked-${randomUUID()}@example.com`;
  await submitCredentials(page, email, PASSWORD, "Create account");
  await expect.poll(() => status(page)).toBe("signed-in");

  // Another address at the provider: a link needs none in common.
  const grace = someone();
  provider.signInAs(grace);
  await page.getByText("Link mock").click();
  await expect.poll(() => page.getByTestId("linked").textContent()).toBe("Linked mock");
  expect(page.url()).toBe(`${demo.url}/?mode=bearer`);
  await expect.poll(() => page.getByTestId("identities").textContent()).toBe(`mock: ${grace.email}`);

  await page.getByText("Sign out", { exact: true }).click();
  await expect.poll(() => status(page)).toBe("signed-out");
  await page.getByText("Sign in with mock").click();
  await expect.poll(() => assurance(page)).toBe("social_oauth, aal1");
  expect(await page.getByTestId("user").textContent()).toBe(email);
});
