// Three projects: unit and component tests in jsdom (no network), integration tests of the client against a
// real IdentSphere (started by test/integration/server.ts), and the browser end-to-end test (Chromium
// driving the demo app, which starts its own IdentSphere and Vite).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", environment: "jsdom", include: ["test/unit/**/*.test.{ts,tsx}"] } },
      {
        test: {
          name: "integration",
          environment: "node",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/integration/server.ts"],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "e2e",
          environment: "node",
          include: ["test/e2e/**/*.test.ts"],
          // One file at a time: the refresh test times the browser's requests, which a second Chromium and
          // server busy on the same cores would skew.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
