// `npm run demo`: the demo app against a local IdentSphere, in one command.
//
// IDENTSPHERE_URL set: that server is used as it is; it must list the demo's origin in
// IDENTSPHERE_ALLOWED_ORIGINS (or have it as IDENTSPHERE_PUBLIC_BASE_URL), or sign-out and refresh get
// `csrf_rejected`, and needs IDENTSPHERE_WEBAUTHN_RP_ID=localhost for passkeys. Unset: a throwaway IdentSphere is started from the release binary (built if missing)
// with the demo's origin as its public base URL, as behind any same-origin proxy: the issuer, the cookies
// and the CSRF check all name the origin the browser sees, and its sign-ins through a provider may come back
// to it (IDENTSPHERE_ALLOWED_REDIRECT_URIS). DEMO_PORT (default 5173) is the page's port; IDENTSPHERE_ACCESS_TOKEN_TTL
// is passed on, so a short one shows the refresh cycles. DEMO_CROSS_ORIGIN=1 (with IDENTSPHERE_URL) has the page
// call IDENTSPHERE_URL directly, cross-origin, rather than through the proxy. The page offers a "Sign in with
// <provider>" button per provider configured with IDENTSPHERE_OAUTH_<NAME>_CLIENT_ID (in the environment, or the
// `env` of startDemo).
import { fileURLToPath } from "node:url";

import { createServer } from "vite";

import { startIdentSphere } from "./identsphere.mjs";

const configFile = fileURLToPath(new URL("../examples/demo/vite.config.ts", import.meta.url));

/** The sign-in providers the variables configure: the lower-cased `<NAME>` of `IDENTSPHERE_OAUTH_<NAME>_CLIENT_ID`. */
function providerNames(env) {
  return Object.keys(env)
    .map((name) => /^IDENTSPHERE_OAUTH_(\w+)_CLIENT_ID$/.exec(name)?.[1]?.toLowerCase())
    .filter((name) => name !== undefined)
    .sort();
}

/**
 * Starts IdentSphere (unless `identsphereUrl` is given; `platformKey` as startIdentSphere's) and the demo's
 * Vite server on `port`. With `crossOrigin`, the page calls `identsphereUrl` itself, an API on another origin
 * (CORS), instead of going through the dev server's proxy; that server must be set up for it (docs/api.md,
 * "Deployment shapes").
 */
export async function startDemo({ port = 5173, identsphereUrl, env = {}, platformKey = false, crossOrigin = false } = {}) {
  if (crossOrigin && !identsphereUrl) throw new Error("startDemo: crossOrigin needs the identsphereUrl to call");
  // localhost, not 127.0.0.1: browsers run WebAuthn only for a domain name, and IdentSphere takes its RP ID
  // from the public base URL's host (on an IP address, passkeys are off).
  const url = `http://localhost:${port}`;
  const identsphere = identsphereUrl
    ? { baseUrl: identsphereUrl, platformKey: undefined, stop: async () => {} }
    : await startIdentSphere(
        { IDENTSPHERE_PUBLIC_BASE_URL: url, IDENTSPHERE_ALLOWED_REDIRECT_URIS: url, ...env },
        { platformKey },
      );
  process.env.IDENTSPHERE_URL = identsphere.baseUrl;
  process.env.IDENTSPHERE_DEMO_API = crossOrigin ? identsphere.baseUrl : "";
  // Read by the page (examples/demo/vite.config.ts): the names only, never a secret.
  process.env.IDENTSPHERE_DEMO_PROVIDERS = providerNames({ ...process.env, ...env }).join(",");
  try {
    const vite = await createServer({ configFile, logLevel: "warn", server: { port, strictPort: true } });
    await vite.listen();
    return {
      url,
      identsphereUrl: identsphere.baseUrl,
      platformKey: identsphere.platformKey,
      stop: async () => {
        await vite.close();
        await identsphere.stop();
      },
    };
  } catch (error) {
    await identsphere.stop();
    throw error;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ttl = process.env.IDENTSPHERE_ACCESS_TOKEN_TTL;
  const demo = await startDemo({
    port: Number(process.env.DEMO_PORT ?? 5173),
    identsphereUrl: process.env.IDENTSPHERE_URL,
    env: ttl ? { IDENTSPHERE_ACCESS_TOKEN_TTL: ttl } : {},
    crossOrigin: process.env.DEMO_CROSS_ORIGIN === "1",
  });
  console.log(`demo: ${demo.url} (IdentSphere at ${demo.identsphereUrl}); Ctrl-C stops both`);
  const shutdown = () => void demo.stop().then(() => process.exit(0));
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}
