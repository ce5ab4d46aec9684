// Enterprise SSO in Debian's Chromium: an organization's own OpenID Connect provider (the mock of
// oidc-provider.ts, as the organization's IdP: no platform provider is configured) is set up through the API
// as its owner would (an organization, a connection, its domain verified with the platform key), and the demo's
// "Sign in with SSO" field, typed an address of the domain, goes through `signInWithSso`: discovery → the
// connection's authorize → the IdP → IdentSphere's callback → the demo, signed in to the connection's
// organization. An address of another domain stays on the page with `connection_not_found`.
import { randomUUID } from "node:crypto";

import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";

import { startDemo, type RunningDemo } from "../../scripts/demo.mjs";
import { freePort } from "../../scripts/identsphere.mjs";
import { PASSWORD } from "../integration/helpers.js";
import { assurance, launchChromium, serverSession, status } from "./browser.js";
import { startMockProvider, type MockProvider } from "./oidc-provider.js";

let idp: MockProvider;
let demo: RunningDemo;
let browser: Browser;

beforeAll(async () => {
  idp = await startMockProvider();
  demo = await startDemo({ port: await freePort(), platformKey: true });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await demo?.stop();
  await idp?.stop();
});

/** A JSON call to IdentSphere from Node, as the organization's backend or the platform operator would make. */
async function api(method: string, path: string, { token, body }: { token?: string; body?: object } = {}) {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`${demo.identsphereUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? null : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json().catch(() => null) };
}

/** `api`, failing the test unless it answers `expected`. */
async function ok(expected: number, ...args: Parameters<typeof api>) {
  const answer = await api(...args);
  expect(answer, `${args[0]} ${args[1]}`).toMatchObject({ status: expected });
  return answer.json;
}

it("signInWithSso: an address of a verified domain signs in through the organization's connection, into that organization", async () => {
  const tag = randomUUID().slice(0, 8);
  const domain = `acme-${tag}.test`;

  // The owner (an address outside the domain) creates the organization, signs in to it, and connects its IdP.
  const owner = { email: `owner-${tag}@example.com`, password: PASSWORD };
  const registered = await ok(201, "POST", "/v1/auth/register", { body: owner });
  const slug = `acme-${tag}`;
  const org = await ok(201, "POST", "/v1/organizations", {
    token: registered.access_token,
    body: { name: "Acme", slug },
  });
  const inOrg = await ok(200, "POST", "/v1/auth/login", { body: { ...owner, organization: slug } });
  expect(inOrg.session.organization_id).toBe(org.id);
  const connections = `/v1/organizations/${org.id}/sso/connections`;
  const connection = await ok(201, "POST", connections, {
    token: inOrg.access_token,
    body: { issuer: idp.issuer, client_id: idp.clientId, client_secret: idp.clientSecret, domains: [domain], enforce: false },
  });
  expect(connection).toMatchObject({ organization_id: org.id, provider: `sso:${connection.id}` });
  expect(connection.domains).toEqual([expect.objectContaining({ domain, verified: false })]);

  // Unverified, the domain finds no connection; the platform operator verifies it.
  const discover = (email: string) =>
    api("POST", "/v1/auth/sso/discover", { body: { email, redirect_uri: `${demo.url}/` } });
  expect(await discover(`someone@${domain}`)).toMatchObject({
    status: 404,
    json: { error: { code: "connection_not_found" } },
  });
  const verified = await ok(200, "POST", `${connections}/${connection.id}/verify-domain`, {
    token: demo.platformKey ?? "",
    body: { domain },
  });
  expect(verified.domains).toEqual([expect.objectContaining({ domain, verified: true })]);

  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const navigations: string[] = [];
    const providerRequests: string[] = [];
    page.on("framenavigated", (frame) => frame === page.mainFrame() && navigations.push(frame.url()));
    page.on("request", (request) => {
      if (new URL(request.url()).pathname.startsWith("/v1/auth/oauth/")) providerRequests.push(request.url());
    });
    await page.goto(demo.url);
    await expect.poll(() => status(page)).toBe("signed-out");
    const sso = async (email: string) => {
      await page.getByLabel("Work email").fill(email);
      await page.getByRole("button", { name: "Sign in with SSO" }).click();
    };

    // Another domain: discovery answers connection_not_found, shown, and the page stays where it is.
    await sso(`someone@other-${tag}.test`);
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/^connection_not_found: /);
    expect(navigations).toEqual([`${demo.url}/`]);
    expect(providerRequests).toEqual([]);
    expect(await status(page)).toBe("signed-out");

    // The domain: through the connection (the IdP need not say the address is verified: the organization
    // is the authority on its domain), a new user joined to the organization just in time.
    const ada = { sub: randomUUID(), email: `ada@${domain}`, email_verified: false, name: "Ada" };
    idp.signInAs(ada);
    await sso(ada.email);
    await expect.poll(() => status(page)).toBe("signed-in");
    expect(await page.getByTestId("user").textContent()).toBe(ada.email);
    expect(await assurance(page)).toBe("social_oauth, aal1");
    expect(await serverSession(page)).toMatchObject({
      user: { email: ada.email },
      session: { auth_method: "social_oauth", aal: "aal1", organization_id: org.id },
      organization: { id: org.id, slug, role: "member" },
    });
    expect(providerRequests.map((url) => new URL(url).pathname)).toContain(
      `/v1/auth/oauth/sso:${connection.id}/authorize`,
    );
    expect(idp.tokenAnswers).toEqual([200]);
    expect(page.url()).toBe(`${demo.url}/`);
  } finally {
    await context.close();
  }

  // Enforcement: a member of the domain with a password (signed up while the organization was open) may no
  // longer sign in to it with that password.
  await ok(200, "PATCH", `/v1/organizations/${org.id}`, { token: inOrg.access_token, body: { signup: { mode: "open" } } });
  const bob = { email: `bob@${domain}`, password: PASSWORD };
  const bobs = await ok(201, "POST", "/v1/auth/register", { body: { ...bob, organization: slug } });
  expect(bobs.session.organization_id).toBe(org.id);
  await ok(200, "PATCH", `${connections}/${connection.id}`, { token: inOrg.access_token, body: { enforce: true } });
  expect(await api("POST", "/v1/auth/login", { body: { ...bob, organization: slug } })).toMatchObject({
    status: 403,
    json: { error: { code: "sso_required" } },
  });
});
