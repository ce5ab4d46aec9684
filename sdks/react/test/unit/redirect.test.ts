// Sign-in through a provider, against the fake server in jsdom: the authorize URL the browser is sent to,
// PKCE in bearer mode, and the return (a code, an error, a link) handled once, taken out of the address bar
// and never replayed by a reload. Each "page load" is a new client on the same window, as after a navigation.
import { createHash } from "node:crypto";

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { IdentSphereClient, IdentSphereError, type ClientOptions } from "../../src/client/index.js";
import { INFO, envelope, fakeFetch, json, tokenResponse } from "./fake-server.js";

const PAGE = "http://localhost:3000/account?tab=security";
const FLOW_KEY = "identsphere:same-origin:flow";
const SOCIAL = { ...INFO, session: { ...INFO.session, auth_method: "social_oauth" } };

/** Puts the page at `url` (same origin as jsdom's, so no navigation). */
const goTo = (url: string) => window.history.replaceState(null, "", url);
const here = () => window.location.href;

/** A client whose navigations are recorded instead of leaving jsdom's page. */
function page(options: ClientOptions = {}) {
  const navigations: string[] = [];
  const client = new IdentSphereClient({ syncTabs: false, navigate: (url) => navigations.push(url), ...options });
  return { client, navigations };
}

const base64url = (bytes: Buffer) => bytes.toString("base64url");
const s256 = (verifier: string) => base64url(createHash("sha256").update(verifier).digest());
const storedFlow = () => JSON.parse(sessionStorage.getItem(FLOW_KEY) ?? "null");

/** The server's side of a return: the one-time code exchange, and the session read. */
function returnServer(answer: () => { status: number; body?: unknown } = () => json(200, tokenResponse(SOCIAL))) {
  return fakeFetch({
    "POST /v1/auth/oauth/token": answer,
    "GET /v1/auth/session": () => json(200, SOCIAL),
    "POST /v1/auth/refresh": () => envelope(401, "token_missing"),
    "POST /v1/auth/mfa/verify": () => json(200, tokenResponse(SOCIAL)),
  });
}

beforeEach(() => {
  sessionStorage.clear();
  goTo(PAGE);
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("signInWith", () => {
  it("sends the browser to the provider's authorize route, coming back to this page (cookie mode: no PKCE)", async () => {
    goTo(`${PAGE}&code=old&error=old#section`);
    const { client, navigations } = page({ baseUrl: "https://auth.example.com/" });
    await client.signInWith("google", { organization: "acme" });

    expect(navigations).toHaveLength(1);
    const url = new URL(navigations[0] ?? "");
    expect(url.origin + url.pathname).toBe("https://auth.example.com/v1/auth/oauth/google/authorize");
    // This page without its fragment and without an earlier return's parameters.
    expect(Object.fromEntries(url.searchParams)).toEqual({ redirect_uri: PAGE, organization: "acme" });
    const flow = JSON.parse(sessionStorage.getItem("identsphere:https://auth.example.com:flow") ?? "null");
    expect(flow).toMatchObject({ kind: "sign-in" });
    expect(flow.verifier).toBeUndefined();
  });

  it("takes the redirect URI given, and keeps the colon of an SSO connection's provider name", async () => {
    const { client, navigations } = page();
    await client.signInWith("sso:0b6c1f5e-1d4c-4d7e-9a57-1c0e0a4a9d11", { redirectUri: "https://app.example.com/back" });
    expect(navigations[0]).toBe(
      "/v1/auth/oauth/sso:0b6c1f5e-1d4c-4d7e-9a57-1c0e0a4a9d11/authorize?redirect_uri=https%3A%2F%2Fapp.example.com%2Fback",
    );
  });

  it("in bearer mode sends a PKCE S256 challenge whose 43-character verifier stays in sessionStorage", async () => {
    const { client, navigations } = page({ mode: "bearer" });
    await client.signInWith("google");
    await client.signInWith("google");

    const challenges = navigations.map((n) => new URL(n, PAGE).searchParams.get("code_challenge") ?? "");
    const { verifier } = storedFlow();
    expect(verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(challenges[1]).toBe(s256(verifier));
    // A new verifier per sign-in: the first one's challenge is not the second's.
    expect(challenges[0]).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(challenges[0]).not.toBe(challenges[1]);
  });

  it("in bearer mode on a page without WebCrypto, rejects before leaving the page", async () => {
    vi.stubGlobal("crypto", { getRandomValues: globalThis.crypto.getRandomValues.bind(globalThis.crypto) });
    const { client, navigations } = page({ mode: "bearer" });
    await expect(client.signInWith("google")).rejects.toMatchObject({ code: "pkce_unsupported", type: "client_error" });
    expect(navigations).toEqual([]);
    expect(storedFlow()).toBeNull();
  });
});

describe("the return from the provider", () => {
  it("bearer mode: the code is exchanged with the verifier, the address cleaned, and a reload replays nothing", async () => {
    await page({ mode: "bearer" }).client.signInWith("google");
    const { verifier } = storedFlow();

    // The provider and IdentSphere send the browser back with a one-time code.
    goTo(`${PAGE}&code=one-time-code#section`);
    const fetch = returnServer();
    const { client } = page({ mode: "bearer", fetch });
    expect(await client.start()).toMatchObject({ status: "signed-in", session: { auth_method: "social_oauth" } });
    client.stop();

    const exchange = fetch.requests.find((r) => r.key === "POST /v1/auth/oauth/token");
    expect(exchange).toMatchObject({ body: { code: "one-time-code", code_verifier: verifier }, credentials: "omit" });
    expect(client.getAccessToken()).toBe("at");
    expect(here()).toBe(`${PAGE}#section`);
    expect(storedFlow()).toBeNull();
    // Every call of handleRedirect gets the one answer.
    expect(await client.handleRedirect()).toMatchObject({ status: "signed-in", user: { email: INFO.user.email } });
    expect(fetch.calls.filter((c) => c === "POST /v1/auth/oauth/token")).toHaveLength(1);

    // Reload: the address has no code, the flow is gone.
    const reload = returnServer();
    const again = page({ mode: "bearer", fetch: reload });
    expect(await again.client.handleRedirect()).toBeNull();
    expect(reload.calls).toEqual([]);
  });

  it("a reload with the code still in the address (history kept it) replays nothing: the flow was taken", async () => {
    await page({ mode: "bearer" }).client.signInWith("google");
    goTo(`${PAGE}&code=one-time-code`);
    await page({ mode: "bearer", fetch: returnServer() }).client.handleRedirect();

    goTo(`${PAGE}&code=one-time-code`);
    const reload = returnServer();
    expect(await page({ mode: "bearer", fetch: reload }).client.handleRedirect()).toBeNull();
    expect(reload.calls).toEqual([]);
    expect(here()).toBe(`${PAGE}&code=one-time-code`);
  });

  it("cookie mode: a code (a second factor is due) is exchanged with the browser's cookie, into the MFA step", async () => {
    await page().client.signInWith("google");
    goTo(`${PAGE}&code=one-time-code`);
    const fetch = returnServer(() => json(200, { mfa_required: true, mfa_token: "mfa", factors: ["totp", "passkey"] }));
    const { client } = page({ fetch });

    expect(await client.start()).toEqual({ status: "signed-out" });
    const result = await client.handleRedirect();
    expect(result).toEqual({ status: "mfa-required", mfaToken: "mfa", factors: ["totp", "passkey"] });
    const exchange = fetch.requests.find((r) => r.key === "POST /v1/auth/oauth/token");
    expect(exchange).toMatchObject({ body: { code: "one-time-code" }, credentials: "include" });
    expect(exchange?.body).not.toHaveProperty("code_verifier");
    expect(here()).toBe(PAGE);

    // The step is password login's.
    await client.verifyMfa({ mfaToken: "mfa", code: "123456" });
    client.stop();
    expect(client.getState()).toMatchObject({ status: "signed-in", session: { auth_method: "social_oauth" } });
  });

  it("cookie mode signed in by the cookies: nothing in the address, the session is found as on any load", async () => {
    await page().client.signInWith("google");
    const fetch = fakeFetch({
      "GET /v1/auth/session": () => json(200, SOCIAL),
      "POST /v1/auth/refresh": () => json(200, tokenResponse(SOCIAL)),
    });
    const { client } = page({ fetch });
    expect(await client.start()).toMatchObject({ status: "signed-in", session: { auth_method: "social_oauth" } });
    client.stop();
    expect(await client.handleRedirect()).toBeNull();
    // The page load's session read, and the refresh that learns the access cookie's expiry.
    expect(fetch.calls).toEqual(["GET /v1/auth/session", "POST /v1/auth/refresh", "GET /v1/auth/session"]);
    // The flow is over: an ?error= of the app's later is the app's.
    expect(storedFlow()).toBeNull();
  });

  it("an ?error= rejects with that catalog code, is taken out of the address, and start() still resolves", async () => {
    await page().client.signInWith("google");
    goTo(`${PAGE}&error=oauth_email_unverified`);
    const fetch = returnServer();
    const { client } = page({ fetch });

    expect(await client.start()).toEqual({ status: "signed-out" });
    const error = await client.handleRedirect().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdentSphereError);
    expect(error).toMatchObject({ code: "oauth_email_unverified", type: "redirect_error", status: 0 });
    expect(here()).toBe(PAGE);
    expect(fetch.calls).not.toContain("POST /v1/auth/oauth/token");
  });

  it("an ?error= that is not a catalog code is not repeated", async () => {
    await page().client.signInWith("google");
    goTo(`${PAGE}&error=${encodeURIComponent("<img src=x onerror=alert(1)>")}`);
    const error = await page().client.handleRedirect().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "unexpected_response", type: "redirect_error" });
    expect((error as Error).message).not.toContain("<img");
  });

  it("leaves the app's own ?code= and ?error= alone when this tab started no flow", async () => {
    goTo(`${PAGE}&code=INVITE-42&error=app_error`);
    const fetch = returnServer();
    const { client } = page({ fetch });
    expect(await client.handleRedirect()).toBeNull();
    expect(here()).toBe(`${PAGE}&code=INVITE-42&error=app_error`);
    expect(fetch.calls).toEqual([]);
  });

  it("ignores a return after the flow's 10 minutes (the server has forgotten it too)", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    await page().client.signInWith("google");
    vi.setSystemTime(Date.now() + 10 * 60_000 + 1);
    goTo(`${PAGE}&code=late`);
    const fetch = returnServer();
    expect(await page({ fetch }).client.handleRedirect()).toBeNull();
    expect(fetch.calls).toEqual([]);
  });

  it("a code the server refuses rejects handleRedirect with its error, and the page is signed out", async () => {
    await page({ mode: "bearer" }).client.signInWith("google");
    goTo(`${PAGE}&code=spent`);
    const { client } = page({ mode: "bearer", fetch: returnServer(() => envelope(400, "oauth_code_invalid", "invalid_request_error")) });
    expect(await client.start()).toEqual({ status: "signed-out" });
    await expect(client.handleRedirect()).rejects.toMatchObject({ code: "oauth_code_invalid", status: 400 });
  });
});

describe("signInWithSso", () => {
  const discovery = {
    authorize_url: "https://idp.acme.test/authorize?client_id=x&state=s",
    connection_id: "c1",
    organization_id: "o1",
  };

  it("finds the domain's connection and sends the browser to it (bearer mode: with a PKCE challenge)", async () => {
    const fetch = fakeFetch({ "POST /v1/auth/sso/discover": () => json(200, discovery) });
    const { client, navigations } = page({ mode: "bearer", fetch });
    await client.signInWithSso("ada@acme.test");

    expect(navigations).toEqual([discovery.authorize_url]);
    const [request] = fetch.requests;
    expect(request?.body).toEqual({
      email: "ada@acme.test",
      redirect_uri: PAGE,
      code_challenge: s256(storedFlow().verifier),
    });
    // The answer may set the flow's browser-binding cookie, which the callback needs, in either mode.
    expect(request?.credentials).toBe("include");
  });

  it("cookie mode sends no challenge", async () => {
    const fetch = fakeFetch({ "POST /v1/auth/sso/discover": () => json(200, discovery) });
    const { client } = page({ fetch });
    await client.signInWithSso("ada@acme.test", { redirectUri: "https://app.example.com/" });
    expect(fetch.requests[0]?.body).toEqual({ email: "ada@acme.test", redirect_uri: "https://app.example.com/" });
  });

  it("rejects with connection_not_found, leaving the page and the flow untouched (fall back to a password)", async () => {
    const fetch = fakeFetch({
      "POST /v1/auth/sso/discover": () => envelope(404, "connection_not_found", "invalid_request_error"),
    });
    const { client, navigations } = page({ fetch });
    await expect(client.signInWithSso("ada@gmail.test")).rejects.toMatchObject({ code: "connection_not_found", status: 404 });
    expect(navigations).toEqual([]);
    expect(storedFlow()).toBeNull();
  });
});

describe("identities", () => {
  const signedIn = (routes: Parameters<typeof fakeFetch>[0]) =>
    fakeFetch({
      "POST /v1/auth/login": () => json(200, tokenResponse()),
      "GET /v1/auth/session": () => json(200, INFO),
      ...routes,
    });

  it("linkIdentity starts the link with the access token and the binding cookie; the return says linked", async () => {
    const fetch = signedIn({
      "POST /v1/auth/identities/github/link": () => json(200, { authorize_url: "https://github.test/login/oauth/authorize?x" }),
    });
    const { client, navigations } = page({ mode: "bearer", fetch });
    await client.login({ email: "a@b.c", password: "x" });
    await client.linkIdentity("github");
    client.stop();
    expect(navigations).toEqual(["https://github.test/login/oauth/authorize?x"]);
    expect(fetch.requests.at(-1)).toMatchObject({
      body: { redirect_uri: PAGE },
      authorization: "Bearer at",
      credentials: "include",
    });

    goTo(`${PAGE}&linked=github`);
    expect(await page({ mode: "bearer", fetch: signedIn({}) }).client.handleRedirect()).toEqual({
      status: "linked",
      provider: "github",
    });
    expect(here()).toBe(PAGE);
  });

  it("a link refused at the callback comes back as its error", async () => {
    const fetch = signedIn({ "POST /v1/auth/identities/github/link": () => json(200, { authorize_url: "https://x.test/" }) });
    const { client } = page({ fetch });
    await client.linkIdentity("github");
    goTo(`${PAGE}&error=identity_taken`);
    await expect(page({ fetch }).client.handleRedirect()).rejects.toMatchObject({ code: "identity_taken" });
  });

  it("lists and unlinks, with the password only when given", async () => {
    const identity = {
      id: "i1",
      provider: "google",
      email: "ada@example.com",
      created_at: "2026-01-01T00:00:00Z",
      last_used_at: null,
    };
    const fetch = signedIn({
      "GET /v1/auth/identities": () => json(200, { identities: [identity] }),
      "DELETE /v1/auth/identities/i1": () => json(204),
    });
    const { client } = page({ mode: "bearer", fetch });
    await client.login({ email: "a@b.c", password: "x" });
    expect(await client.listIdentities()).toEqual([identity]);
    await client.unlinkIdentity("i1");
    await client.unlinkIdentity("i1", { password: "pw" });
    client.stop();
    const deletes = fetch.requests.filter((r) => r.key === "DELETE /v1/auth/identities/i1");
    expect(deletes.map((r) => r.body)).toEqual([undefined, { password: "pw" }]);
    expect(deletes.every((r) => r.authorization === "Bearer at" && r.credentials === "omit")).toBe(true);
  });
});

it("the verifier is base64url of 32 random bytes", async () => {
  const { client } = page({ mode: "bearer" });
  await client.signInWith("google");
  expect(Buffer.from(storedFlow().verifier, "base64url")).toHaveLength(32);
  expect(base64url(Buffer.from(storedFlow().verifier, "base64url"))).toBe(storedFlow().verifier);
});
