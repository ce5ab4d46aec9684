import { afterEach, describe, expect, it, vi } from "vitest";

import { IdentSphereClient, IdentSphereError, accessExpiry, refreshDelay } from "../../src/client/index.js";
import { totp } from "../integration/helpers.js";
import { INFO, envelope, fakeFetch, json, tokenResponse } from "./fake-server.js";

describe("refreshDelay", () => {
  it("refreshes a minute ahead of long lifetimes", () => {
    expect(refreshDelay(900_000)).toBe(840_000);
  });
  it("refreshes at three quarters of short lifetimes", () => {
    expect(refreshDelay(4_000)).toBe(3_000);
  });
  it("refreshes at once when already expired", () => {
    expect(refreshDelay(-5)).toBe(0);
  });
});

describe("accessExpiry", () => {
  it("counts a second less than expires_in, for exp's whole seconds", () => {
    expect(accessExpiry(900, 1_000)).toBe(900_000);
    expect(accessExpiry(3, 0)).toBe(2_000);
  });
});

describe("errors", () => {
  it("carries the envelope's code, type, message and the request id", async () => {
    const client = new IdentSphereClient({ fetch: fakeFetch({ "POST /v1/auth/login": () => envelope(401, "invalid_credentials") }) });
    const error = await client.login({ email: "a@b.c", password: "x" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdentSphereError);
    expect(error).toMatchObject({
      code: "invalid_credentials",
      type: "authentication_error",
      message: "invalid_credentials (fake)",
      status: 401,
      requestId: "req-1",
    });
  });

  it("names a response without the envelope (a proxy's HTML page)", async () => {
    const html = async () => new Response("<html>Bad Gateway</html>", { status: 502 });
    const error = await new IdentSphereClient({ fetch: html }).login({ email: "a@b.c", password: "x" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "unexpected_response", type: "client_error", status: 502 });
  });
});

describe("cookie mode", () => {
  it("drops the tokens of the body and sends credentials", async () => {
    const seen: RequestInit[] = [];
    const routes = fakeFetch({
      "POST /v1/auth/login": () => json(200, tokenResponse()),
      "GET /v1/auth/session": () => json(200, INFO),
    });
    const client = new IdentSphereClient({
      fetch: (input, init = {}) => (seen.push(init), routes(input, init)),
    });
    const result = await client.login({ email: "a@b.c", password: "x" });
    expect(client.getAccessToken()).toBeNull();
    expect(JSON.stringify(result)).not.toContain('"at"');
    expect(JSON.stringify(client.getState())).not.toContain('"rt"');
    expect(seen.every((init) => init.credentials === "include")).toBe(true);
  });

  it("a sign-in whose cookies do not come back says why, and stays signed out", async () => {
    const fetch = fakeFetch({
      "POST /v1/auth/login": () => json(200, tokenResponse()),
      "GET /v1/auth/session": () => envelope(401, "token_missing"),
    });
    const client = new IdentSphereClient({ baseUrl: "https://auth.example.com", fetch, syncTabs: false });
    const error = await client.login({ email: "a@b.c", password: "x" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "cookies_blocked", type: "client_error" });
    expect((error as Error).message).toContain("IDENTSPHERE_COOKIE_SAMESITE=none");
    expect(client.getState().status).not.toBe("signed-in");
  });

  it("on load, an expired access cookie means one refresh", async () => {
    let refreshed = false;
    const fetch = fakeFetch({
      "GET /v1/auth/session": () => (refreshed ? json(200, INFO) : envelope(401, "token_missing")),
      "POST /v1/auth/refresh": () => ((refreshed = true), json(200, tokenResponse())),
    });
    const client = new IdentSphereClient({ fetch, syncTabs: false });
    expect(await client.start()).toMatchObject({ status: "signed-in", user: { email: INFO.user.email } });
    client.stop();
    expect(fetch.calls.filter((c) => c === "POST /v1/auth/refresh")).toHaveLength(1);
  });
});

describe("bearer mode", () => {
  it("refresh is single-flight within the client", async () => {
    const fetch = fakeFetch({
      "POST /v1/auth/login": () => json(200, tokenResponse()),
      "GET /v1/auth/session": () => json(200, INFO),
      "POST /v1/auth/refresh": () => json(200, tokenResponse()),
    });
    const client = new IdentSphereClient({ mode: "bearer", fetch });
    await client.login({ email: "a@b.c", password: "x" });
    await Promise.all([client.refresh(), client.refresh(), client.refresh()]);
    client.stop();
    expect(fetch.calls.filter((c) => c === "POST /v1/auth/refresh")).toHaveLength(1);
  });

  it("a dead refresh token signs out", async () => {
    const fetch = fakeFetch({
      "POST /v1/auth/login": () => json(200, tokenResponse()),
      "GET /v1/auth/session": () => json(200, INFO),
      "POST /v1/auth/refresh": () => envelope(401, "refresh_token_reused"),
    });
    const client = new IdentSphereClient({ mode: "bearer", fetch });
    await client.login({ email: "a@b.c", password: "x" });
    await expect(client.refresh()).rejects.toMatchObject({ code: "refresh_token_reused" });
    expect(client.getState()).toEqual({ status: "signed-out" });
    expect(client.getAccessToken()).toBeNull();
  });

  it("a transient refresh failure keeps the session", async () => {
    const fetch = fakeFetch({
      "POST /v1/auth/login": () => json(200, tokenResponse()),
      "GET /v1/auth/session": () => json(200, INFO),
      "POST /v1/auth/refresh": () => envelope(503, "service_unavailable", "api_error"),
    });
    const client = new IdentSphereClient({ mode: "bearer", fetch });
    await client.login({ email: "a@b.c", password: "x" });
    await expect(client.refresh()).rejects.toMatchObject({ code: "service_unavailable" });
    client.stop();
    expect(client.getState().status).toBe("signed-in");
    expect(client.getAccessToken()).toBe("at");
  });

  it("login reports the mfa step and verify completes it", async () => {
    const fetch = fakeFetch({
      "POST /v1/auth/login": () => json(200, { mfa_required: true, mfa_token: "mfa", factors: ["totp"] }),
      "POST /v1/auth/mfa/verify": (body) =>
        (body as { mfa_token?: string }).mfa_token === "mfa" ? json(200, tokenResponse()) : envelope(401, "mfa_invalid_code"),
      "GET /v1/auth/session": () => json(200, INFO),
    });
    const client = new IdentSphereClient({ mode: "bearer", fetch });
    expect(await client.login({ email: "a@b.c", password: "x" })).toEqual({
      status: "mfa-required",
      mfaToken: "mfa",
      factors: ["totp"],
    });
    expect(client.getState().status).toBe("loading");
    await client.verifyMfa({ mfaToken: "mfa", code: "123456" });
    client.stop();
    expect(client.getState().status).toBe("signed-in");
  });
});

describe("an IdentSphere on another origin", () => {
  const baseUrl = "https://auth.example.com";
  const session = () =>
    fakeFetch({
      "POST /v1/auth/login": () => json(200, tokenResponse()),
      "GET /v1/auth/session": () => json(200, INFO),
      "POST /v1/auth/refresh": () => json(200, tokenResponse()),
      "POST /v1/auth/mfa/verify": () => json(200, tokenResponse()),
      "POST /v1/auth/logout": () => json(204),
    });
  /** Sign-in, session read, refresh, step-up and logout: every kind of call a session makes. */
  async function sessionCalls(client: IdentSphereClient) {
    await client.login({ email: "a@b.c", password: "x" });
    await client.getSession();
    await client.refresh();
    await client.verifyMfa({ code: "123456" });
    await client.logout();
    client.stop();
  }

  it("cookie mode sends the cookies with every call to it", async () => {
    const fetch = session();
    await sessionCalls(new IdentSphereClient({ baseUrl, fetch, syncTabs: false }));
    expect(fetch.calls).toEqual([
      "POST /v1/auth/login",
      "GET /v1/auth/session",
      "GET /v1/auth/session",
      "POST /v1/auth/refresh",
      "POST /v1/auth/mfa/verify",
      "POST /v1/auth/logout",
    ]);
    for (const request of fetch.requests) {
      expect(request).toMatchObject({ url: expect.stringMatching(/^https:\/\/auth\.example\.com\/v1\//), credentials: "include", authorization: null });
    }
  });

  it("bearer mode sends no cookie, and the access token on every call past sign-in", async () => {
    const fetch = session();
    await sessionCalls(new IdentSphereClient({ baseUrl, mode: "bearer", fetch }));
    expect(fetch.requests.every((r) => r.url.startsWith(`${baseUrl}/v1/`) && r.credentials === "omit")).toBe(true);
    const unauthenticated = fetch.requests.filter((r) => r.authorization !== "Bearer at").map((r) => r.key);
    // The refresh presents its refresh token in the body instead.
    expect(unauthenticated).toEqual(["POST /v1/auth/login", "POST /v1/auth/refresh"]);
  });

  it("a request the browser withholds (no CORS for this page) names the setting to check", async () => {
    const blocked = async () => Promise.reject(new TypeError("Failed to fetch"));
    const error = await new IdentSphereClient({ baseUrl, fetch: blocked }).login({ email: "a@b.c", password: "x" }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "network_error",
      type: "client_error",
      status: 0,
      message: `POST /v1/auth/login: no response, or one the browser withheld: IdentSphere at ${baseUrl} answers CORS only for the origins in its IDENTSPHERE_ALLOWED_ORIGINS (is ${window.location.origin} one?)`,
    });
    // Same-origin, CORS plays no part: the plain message.
    const sameOrigin = await new IdentSphereClient({ fetch: blocked }).login({ email: "a@b.c", password: "x" }).catch((e: unknown) => e);
    expect(sameOrigin).toMatchObject({ code: "network_error", message: "POST /v1/auth/login: no response" });
  });
});

describe("the refresh schedule", () => {
  afterEach(() => vi.useRealTimers());

  it("refreshes ahead of expiry between start and stop", async () => {
    vi.useFakeTimers();
    const fetch = fakeFetch({
      "POST /v1/auth/login": () => json(200, tokenResponse(INFO, 5)),
      "POST /v1/auth/refresh": () => json(200, tokenResponse(INFO, 5)),
      "GET /v1/auth/session": () => json(200, INFO),
    });
    const refreshes = () => fetch.calls.filter((c) => c === "POST /v1/auth/refresh").length;
    const client = new IdentSphereClient({ mode: "bearer", fetch });
    expect(await client.start()).toEqual({ status: "signed-out" });
    await client.login({ email: "a@b.c", password: "x" });

    // A 5 s token counts as 4 s and is refreshed at three quarters: after 3 s, then every 3 s.
    await vi.advanceTimersByTimeAsync(2_900);
    expect(refreshes()).toBe(0);
    await vi.advanceTimersByTimeAsync(200);
    expect(refreshes()).toBe(1);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(refreshes()).toBe(2);

    client.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(refreshes()).toBe(2);
  });
});

describe("the tests' TOTP", () => {
  it("matches RFC 6238's SHA-1 vector at 59 s", () => {
    // The RFC's key is the ASCII "12345678901234567890"; its 8-digit code at T=59 s is 94287082.
    expect(totp("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 0, 59_000)).toBe("287082");
  });
});
