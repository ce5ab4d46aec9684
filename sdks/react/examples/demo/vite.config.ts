// The demo's dev server. By default the page reaches IdentSphere same-origin: Vite proxies the API paths to
// IDENTSPHERE_URL, and the browser sees one origin for the page, the API and the cookies. IdentSphere must
// accept this origin for cookie requests (IDENTSPHERE_PUBLIC_BASE_URL or IDENTSPHERE_ALLOWED_ORIGINS). With
// IDENTSPHERE_DEMO_API set (by scripts/demo.mjs), the page calls that URL directly instead, cross-origin.
import { fileURLToPath } from "node:url";

import { defineConfig } from "vite";

const target = process.env.IDENTSPHERE_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  resolve: {
    // The package from its source, so the demo needs no build step.
    alias: { "@identsphere/react": fileURLToPath(new URL("../../src/index.ts", import.meta.url)) },
  },
  define: {
    // The sign-in providers to offer a button for (set by scripts/demo.mjs from the server's configuration).
    __IDENTSPHERE_PROVIDERS__: JSON.stringify(process.env.IDENTSPHERE_DEMO_PROVIDERS ?? ""),
    // The client's baseUrl: "" for this origin (the proxy).
    __IDENTSPHERE_API__: JSON.stringify(process.env.IDENTSPHERE_DEMO_API ?? ""),
  },
  server: {
    host: "127.0.0.1",
    proxy: { "/v1": target, "/.well-known": target },
  },
});
