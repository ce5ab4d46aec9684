// The demo's dev server. IdentSphere sends no CORS headers, so the page reaches it same-origin: Vite
// proxies the API paths to IDENTSPHERE_URL, and the browser sees one origin for the page, the API and the
// cookies. IdentSphere must accept this origin for cookie requests (IDENTSPHERE_PUBLIC_BASE_URL or
// IDENTSPHERE_ALLOWED_ORIGINS).
import { fileURLToPath } from "node:url";

import { defineConfig } from "vite";

const target = process.env.IDENTSPHERE_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  resolve: {
    // The package from its source, so the demo needs no build step.
    alias: { "@identsphere/react": fileURLToPath(new URL("../../src/index.ts", import.meta.url)) },
  },
  // The sign-in providers to offer a button for (set by scripts/demo.mjs from the server's configuration).
  define: { __IDENTSPHERE_PROVIDERS__: JSON.stringify(process.env.IDENTSPHERE_DEMO_PROVIDERS ?? "") },
  server: {
    host: "127.0.0.1",
    proxy: { "/v1": target, "/.well-known": target },
  },
});
