// Two clients sharing one cookie jar stand for two tabs. Node has BroadcastChannel but no Web Locks, so this
// exercises the election fallback (the browser test exercises Web Locks). A 3-second access token makes a
// refresh cycle every 1.5 s (see accessExpiry); the server's own counter, polled faster than that, shows one refresh per cycle.
import { afterAll, beforeAll, expect, it } from "vitest";

import { IdentSphereClient } from "../../src/client/index.js";
import { metric, startIdentSphere, type RunningIdentSphere } from "../../scripts/identsphere.mjs";
import { PASSWORD, browserFetch, uniqueEmail } from "./helpers.js";

let server: RunningIdentSphere;

beforeAll(async () => {
  server = await startIdentSphere({ IDENTSPHERE_ACCESS_TOKEN_TTL: "3" });
});
afterAll(() => server?.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("two tabs: one refresh per cycle, both signed in, logout in one signs out the other", { timeout: 30_000 }, async () => {
  const jar = browserFetch(server.baseUrl);
  const options = { baseUrl: server.baseUrl, fetch: jar, syncTabs: true } as const;
  const first = new IdentSphereClient(options);
  const second = new IdentSphereClient(options);
  try {
    expect(await first.start()).toEqual({ status: "signed-out" });
    await first.register({ email: uniqueEmail(), password: PASSWORD });
    // No localStorage in Node, so the second tab learns the expiry by refreshing once at start.
    expect((await second.start()).status).toBe("signed-in");
    await sleep(200);

    const refreshes = () => metric(server.baseUrl, "identsphere_http_requests_total", { route: "/v1/auth/refresh" });
    const replays = () => metric(server.baseUrl, "identsphere_sessions_refreshes_total", { outcome: "grace_replay" });
    const startReplays = await replays();
    let last = await refreshes();
    const steps: number[] = [];
    for (const started = Date.now(); Date.now() - started < 9_000; ) {
      await sleep(100);
      const now = await refreshes();
      if (now !== last) steps.push(now - last);
      last = now;
      expect([first.getState().status, second.getState().status]).toEqual(["signed-in", "signed-in"]);
    }
    expect(steps.length).toBeGreaterThanOrEqual(5);
    expect(steps).toEqual(steps.map(() => 1));
    expect(await replays()).toBe(startReplays);
    await second.getSession();

    await first.logout();
    await expect.poll(() => second.getState().status).toBe("signed-out");
  } finally {
    first.stop();
    second.stop();
  }
});
