// Watching tabs that share one cookie session through the refresh cycles of a short access token: what the
// browser sends and what the server counts (its metrics), so that a second tab refreshing the same round, or
// a tab signed out by a reused refresh token, fails the test.
import type { BrowserContext, Page, Request } from "playwright-core";
import { expect } from "vitest";

import { metric } from "../../scripts/identsphere.mjs";
import { sessionStatus, status } from "./browser.js";

/** The access-token lifetime to give the server (IDENTSPHERE_ACCESS_TOKEN_TTL). */
export const TTL_SECONDS = 3;
/** accessExpiry counts 2 s for a 3 s token; refreshDelay refreshes it at three quarters, after 1.5 s. */
export const CYCLE_MS = (TTL_SECONDS - 1) * 750;

export interface Watched {
  context: BrowserContext;
  /** The server's URL for this test process (its metrics). */
  identsphereUrl: string;
  /** IdentSphere as the tabs reach it: "" for their own origin (the demo's proxy), else another origin. */
  api?: string;
}

/**
 * For `ms`, checks that every tab shows signed-in and that its cookies are accepted; asserts no two refreshes
 * sent within half a cycle of each other (when the browser sent them: a poll of the server's counter can
 * stall on a busy machine and see two cycles' refreshes at once), about one per cycle at the server, all
 * rotations (no grace replays, which would mean a second tab presented the same refresh token).
 */
export async function watchRefreshCycles({ context, identsphereUrl, api = "" }: Watched, tabs: Page[], ms: number) {
  const refreshes = () => metric(identsphereUrl, "identsphere_http_requests_total", { route: "/v1/auth/refresh" });
  const outcomes = async () => ({
    rotated: await metric(identsphereUrl, "identsphere_sessions_refreshes_total", { outcome: "rotated" }),
    graceReplay: await metric(identsphereUrl, "identsphere_sessions_refreshes_total", { outcome: "grace_replay" }),
  });
  const before = { requests: await refreshes(), ...(await outcomes()) };
  const sent: number[] = [];
  // The refresh itself: a cross-origin one that needs a preflight is preceded by an OPTIONS to the same path.
  const onFinished = (request: Request) => {
    if (request.method() === "POST" && new URL(request.url()).pathname === "/v1/auth/refresh") {
      sent.push(request.timing().startTime);
    }
  };
  context.on("requestfinished", onFinished);
  const steps: number[] = [];
  const stepTimes: number[] = [];
  let last = before.requests;
  const started = Date.now();
  while (Date.now() - started < ms) {
    await new Promise((r) => setTimeout(r, 200));
    const now = await refreshes();
    if (now !== last) {
      steps.push(now - last);
      stepTimes.push(Date.now() - started);
      last = now;
    }
    for (const tab of tabs) {
      expect(await status(tab)).toBe("signed-in");
      expect(await sessionStatus(tab, api)).toBe(200);
    }
  }
  context.off("requestfinished", onFinished);
  const total = last - before.requests;
  const cycles = ms / CYCLE_MS;
  const gaps = sent
    .sort((a, b) => a - b)
    .slice(1)
    .map((at, i) => Math.round(at - (sent[i] ?? at)));
  console.log(
    `e2e: ${tabs.length} tab(s), ${total} refresh requests in ${ms} ms (${cycles.toFixed(1)} cycles of ${CYCLE_MS} ms); seen in steps ${JSON.stringify(steps)} at ${JSON.stringify(stepTimes)} ms; sent ${JSON.stringify(gaps)} ms apart`,
  );
  expect(sent.length).toBeGreaterThanOrEqual(total - 1);
  expect(Math.min(...gaps)).toBeGreaterThanOrEqual(CYCLE_MS / 2);
  expect(total).toBeGreaterThanOrEqual(Math.floor(cycles) - 1);
  expect(total).toBeLessThanOrEqual(Math.ceil(cycles) + 1);
  const after = await outcomes();
  expect(after.rotated - before.rotated).toBe(total);
  expect(after.graceReplay - before.graceReplay).toBe(0);
}
