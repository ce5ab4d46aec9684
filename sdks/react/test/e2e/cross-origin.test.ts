// The demo app calling an IdentSphere on another origin (the client's `baseUrl`, CORS), in Chromium, in the two
// cross-origin shapes of docs/api.md's "Deployment shapes", rebuilt on loopback. CORS and the CSRF check go by
// origin, cookies and SameSite by site (scheme and registrable domain: ports do not count):
// - same site: the app on http://localhost:<p1>, IdentSphere on http://localhost:<p2>. Two origins of one site,
//   as app.example.com and auth.example.com are: the default cookies (SameSite Lax and Strict) travel with the
//   cross-origin requests because they are same-site. (Unlike a sibling subdomain's, a host-only cookie of
//   localhost also goes to the app's port; the app's server ignores it, and no assertion leans on it.)
// - another site: the app on http://localhost:<p1>, IdentSphere on http://127.0.0.1:<p2>, with
//   IDENTSPHERE_COOKIE_SAMESITE=none. The server allows SameSite=None only on Secure cookies, which it makes
//   Secure only for a public base URL that is not plain http on loopback, so its public base URL is
//   https://127.0.0.1:<p2>, as behind a TLS terminator, while the browser reaches it over plain http: Chromium
//   takes loopback for a secure context and keeps Secure cookies from it. The cookies the browser holds and
//   sends are a deployment's (SameSite=None; Secure, third-party to the app); only the transport differs.
//   Third-party cookies must be allowed for that (launchChromiumAllowingThirdPartyCookies). Where they are
//   blocked, or the server's cookies are not SameSite=None, the browser keeps none: cookie mode says so
//   (cookies_blocked), and bearer mode works all the same.
// In both shapes, cookie mode (two tabs sharing the session through the refresh cycles of a 3-second token: one
// refresh per cycle, each a rotation, no tab signed out by a reused token) and bearer mode (no cookie at all,
// the access token in an `Authorization` header, so the calls are preflighted) sign in, read the session,
// refresh and sign out; and a third origin, not in IDENTSPHERE_ALLOWED_ORIGINS, gets no CORS answer: the page
// settles signed out and a sign-in fails at once with a `network_error` naming the setting.
import type { Browser, BrowserContext, Page, Response } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

import { startDemo, type RunningDemo } from "../../scripts/demo.mjs";
import { freePort, startIdentSphere, type RunningIdentSphere } from "../../scripts/identsphere.mjs";
import { PASSWORD } from "../integration/helpers.js";
import {
  launchChromium,
  launchChromiumAllowingThirdPartyCookies,
  registeredAccount,
  serverSession,
  sessionStatus,
  status,
  submitCredentials,
} from "./browser.js";
import { TTL_SECONDS, watchRefreshCycles } from "./refresh-cycles.js";

interface Shape {
  name: string;
  /** The host the browser reaches IdentSphere on; the app is on localhost. */
  apiHost: string;
  /** The server's settings for this shape, besides IDENTSPHERE_ALLOWED_ORIGINS. */
  env: (api: string) => Record<string, string>;
  /** The session cookies' SameSite (access, refresh) and Secure, as the browser keeps them. */
  cookies: { sameSite: [string, string]; secure: boolean };
  /** IdentSphere's cookies are third-party to the app: cookie mode needs a browser that allows them. */
  thirdParty: boolean;
}

let browser: Browser;

const SHAPES: Shape[] = [
  {
    name: "same site, another origin",
    apiHost: "localhost",
    env: (api) => ({ IDENTSPHERE_PUBLIC_BASE_URL: api }),
    cookies: { sameSite: ["Lax", "Strict"], secure: false },
    thirdParty: false,
  },
  {
    name: "another site",
    apiHost: "127.0.0.1",
    env: (api) => ({ IDENTSPHERE_PUBLIC_BASE_URL: api.replace(/^http:/, "https:"), IDENTSPHERE_COOKIE_SAMESITE: "none" }),
    cookies: { sameSite: ["None", "None"], secure: true },
    thirdParty: true,
  },
];

/** How to close what a test opened: run after it, whatever its outcome. */
const closers: (() => Promise<void>)[] = [];

/** A browser context of `browser`, or, for cookies third-party to the app, a browser that allows them. */
async function open(allowThirdPartyCookies = false): Promise<BrowserContext> {
  const { context, close } = allowThirdPartyCookies
    ? await launchChromiumAllowingThirdPartyCookies()
    : await browser.newContext().then((context) => ({ context, close: () => context.close() }));
  closers.push(close);
  return context;
}

beforeAll(async () => {
  browser = await launchChromium();
});

afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

afterAll(async () => {
  await browser?.close();
});

/** The next call of the page to `path` of IdentSphere with `method` (not its preflight), once answered. */
function nextCall(page: Page, method: string, path: string): Promise<Response> {
  return page.waitForResponse((r) => r.request().method() === method && new URL(r.url()).pathname === path);
}

/** An IdentSphere and the demo app calling it, as the browser reaches them. */
interface Deployment {
  server: RunningIdentSphere;
  app: RunningDemo;
  /** IdentSphere as the browser reaches it. */
  api: string;
  stop(): Promise<void>;
}

/** IdentSphere on `shape.apiHost`, set up as `shape.env` says, and the demo on localhost, its origin allowed. */
async function deploy({ apiHost, env }: Pick<Shape, "apiHost" | "env">): Promise<Deployment> {
  const [appPort, apiPort] = [await freePort(), await freePort()];
  const api = `http://${apiHost}:${apiPort}`;
  const server = await startIdentSphere(
    { ...env(api), IDENTSPHERE_ALLOWED_ORIGINS: `http://localhost:${appPort}`, IDENTSPHERE_ACCESS_TOKEN_TTL: String(TTL_SECONDS) },
    { port: apiPort },
  );
  const app = await startDemo({ port: appPort, identsphereUrl: api, crossOrigin: true }).catch(async (error: unknown) => {
    await server.stop();
    throw error;
  });
  return { server, app, api, stop: () => app.stop().then(server.stop) };
}

describe.each(SHAPES)("$name", (shape) => {
  let server: RunningIdentSphere;
  let app: RunningDemo;
  let api: string;
  let deployment: Deployment | undefined;

  beforeAll(async () => {
    deployment = await deploy(shape);
    ({ server, app, api } = deployment);
  });

  afterAll(async () => {
    await deployment?.stop();
  });

  it("cookie mode: sign-in, session reads, two tabs through the refresh cycles, sign-out", async () => {
    const context = await open(shape.thirdParty);
    const email = await registeredAccount(server.baseUrl, "cross-cookie");
    const first = await context.newPage();
    await first.goto(app.url);
    await expect.poll(() => status(first)).toBe("signed-out");
    await submitCredentials(first, email, PASSWORD, "Sign in");
    await expect.poll(() => status(first)).toBe("signed-in");
    const cookies = (await context.cookies()).map(({ name, domain, sameSite, secure }) => ({ name, domain, sameSite, secure }));
    expect(cookies.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: "identsphere_at", domain: shape.apiHost, sameSite: shape.cookies.sameSite[0], secure: shape.cookies.secure },
      { name: "identsphere_rt", domain: shape.apiHost, sameSite: shape.cookies.sameSite[1], secure: shape.cookies.secure },
    ]);

    // A second tab's page load reads the session with the cookies alone.
    const second = await context.newPage();
    const read = nextCall(second, "GET", "/v1/auth/session");
    await second.goto(app.url);
    expect((await read).status()).toBe(200);
    await expect.poll(() => status(second)).toBe("signed-in");
    expect(await serverSession(second, api)).toMatchObject({ user: { email } });

    await watchRefreshCycles({ context, identsphereUrl: server.baseUrl, api }, [first, second], 9_000);

    await second.getByText("Sign out", { exact: true }).click();
    await expect.poll(() => status(second)).toBe("signed-out");
    await expect.poll(() => status(first), { timeout: 3_000 }).toBe("signed-out");
    expect(await sessionStatus(first, api)).toBe(401);
  });

  it("bearer mode: no cookie, the access token in a header; sign-in, refresh, session read, sign-out", async () => {
    const context = await open();
    const page = await context.newPage();
    await page.goto(`${app.url}/?mode=bearer`);
    await expect.poll(() => status(page)).toBe("signed-out");
    const refreshed = nextCall(page, "POST", "/v1/auth/refresh");
    await submitCredentials(page, await registeredAccount(server.baseUrl, "cross-bearer"), PASSWORD, "Sign in");
    await expect.poll(() => status(page)).toBe("signed-in");
    expect((await refreshed).status()).toBe(200);

    // The page load reads the session with the refreshed pair it kept in sessionStorage.
    const read = nextCall(page, "GET", "/v1/auth/session");
    await page.reload();
    const session = await read;
    expect(session.status()).toBe(200);
    expect(await session.request().headerValue("authorization")).toMatch(/^Bearer /);
    await expect.poll(() => status(page)).toBe("signed-in");
    expect(await context.cookies()).toEqual([]);

    const loggedOut = nextCall(page, "POST", "/v1/auth/logout");
    await page.getByText("Sign out", { exact: true }).click();
    expect((await loggedOut).status()).toBe(204);
    await expect.poll(() => status(page)).toBe("signed-out");
  });

  it("an origin not in IDENTSPHERE_ALLOWED_ORIGINS gets no CORS answer, and a clear error rather than a hang", async () => {
    const other = await startDemo({ port: await freePort(), identsphereUrl: api, crossOrigin: true });
    try {
      const page = await (await open()).newPage();
      const read = page.waitForEvent("requestfailed", (r) => new URL(r.url()).pathname === "/v1/auth/session");
      await page.goto(other.url);
      // The server answers the page load's session read, but not for this origin, so the browser fails it.
      expect((await read).failure()?.errorText).toBe("net::ERR_FAILED");
      const answer = await fetch(`${server.baseUrl}/v1/auth/session`, { headers: { Origin: other.url } });
      expect(answer.status).toBe(401);
      expect(answer.headers.get("access-control-allow-origin")).toBeNull();
      await expect.poll(() => status(page)).toBe("signed-out");

      await submitCredentials(page, await registeredAccount(server.baseUrl, "cross-refused"), PASSWORD, "Sign in");
      await expect
        .poll(() => page.getByRole("alert").textContent())
        .toBe(
          `network_error: POST /v1/auth/login: no response, or one the browser withheld: IdentSphere at ${api} answers CORS only for the origins in its IDENTSPHERE_ALLOWED_ORIGINS (is ${other.url} one?)`,
        );
      expect(await status(page)).toBe("signed-out");
    } finally {
      await other.stop();
    }
  });

});

const ANOTHER_SITE = SHAPES[1]!;

it.each([
  ["third-party cookies are blocked", ANOTHER_SITE, false],
  [
    "IdentSphere's cookies are not SameSite=None",
    { ...ANOTHER_SITE, env: (api: string) => ({ IDENTSPHERE_PUBLIC_BASE_URL: api }) },
    true,
  ],
])("cookie mode on another site where %s: the browser keeps no cookie, and the sign-in says why", async (_, shape, allowThirdPartyCookies) => {
  const { server, app, stop } = await deploy(shape);
  try {
    const context = await open(allowThirdPartyCookies);
    const page = await context.newPage();
    await page.goto(app.url);
    await submitCredentials(page, await registeredAccount(server.baseUrl, "cross-blocked"), PASSWORD, "Sign in");
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/^cookies_blocked: signed in, but the browser did not send/);
    expect(await status(page)).toBe("signed-out");
    expect(await context.cookies()).toEqual([]);
  } finally {
    await stop();
  }
});
