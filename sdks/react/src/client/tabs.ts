//! Coordination between the tabs (and windows, and frames) of one origin that share a session.
//!
//! One tab refreshes, the others receive the result. Who refreshes is decided per refresh *round* (a round
//! is named by the access-token expiry it replaces):
//! - with Web Locks, the tab holding the `…:leader` lock refreshes; the browser hands the lock to another
//!   tab when the leader closes, and never to two tabs at once;
//! - without them, an election over the `BroadcastChannel`: each tab announces a claim for the round, the
//!   first claim wins and simultaneous claims are settled by the lowest tab id;
//! - with neither (a server, React Native, one-tab environments), the one client refreshes.
//! The result, and sign-in and sign-out, travel over the `BroadcastChannel`. The access-token expiry is also
//! written to `localStorage` (a time, not a secret) so that a tab opened later knows when the next refresh
//! is due without rotating the session itself.
//! This module never touches tokens: in cookie mode they live in the browser's cookie jar, in bearer mode
//! in the shared storage the application chose.

import type { SessionInfo } from "./types.js";

export type TabMessage =
  | { kind: "signed-in"; info: SessionInfo; expiresAt: number }
  | { kind: "signed-out" }
  | { kind: "claim"; round: number; tab: string };

/** How long a tab listens for rival claims before it takes a round (fallback election only). */
const CLAIM_WINDOW_MS = 60;

export class TabSync {
  private readonly tab = randomId();
  private readonly channel: BroadcastChannel | null;
  private readonly expiryKey: string;
  /** Claims heard per round, in arrival order (fallback election only). */
  private readonly claims = new Map<number, string[]>();
  private leader = false;
  private readonly stopLeading = new AbortController();
  private releaseLeader: (() => void) | undefined;
  private readonly usesLocks: boolean;

  constructor(
    name: string,
    private readonly onMessage: (message: TabMessage) => void,
  ) {
    this.expiryKey = `${name}:access_expires_at`;
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(name) : null;
    this.channel?.addEventListener("message", (event: MessageEvent<TabMessage>) => this.receive(event.data));
    const locks = typeof navigator === "undefined" ? undefined : navigator.locks;
    this.usesLocks = locks !== undefined && this.channel !== null;
    if (this.usesLocks && locks) {
      locks
        .request(`${name}:leader`, { signal: this.stopLeading.signal }, () => {
          // Granted just as close() ran (the abort only cancels a request still waiting): let it go.
          if (this.stopLeading.signal.aborted) return undefined;
          this.leader = true;
          return new Promise<void>((resolve) => (this.releaseLeader = resolve));
        })
        .catch(() => {
          // Aborted by close() while still waiting for the lock: nothing to release.
        });
    }
  }

  /** Tells the other tabs. */
  publish(message: TabMessage): void {
    if (message.kind === "signed-in") this.storeExpiry(message.expiresAt);
    if (message.kind === "signed-out") this.storeExpiry(null);
    this.channel?.postMessage(message);
  }

  /** Whether this tab performs the refresh of `round`; the others wait for its `signed-in` message. */
  async elected(round: number): Promise<boolean> {
    if (!this.channel) return true;
    if (this.usesLocks) return this.leader;
    const heard = this.claims.get(round);
    if (heard && heard.length > 0) return false;
    this.claims.set(round, [this.tab]);
    this.channel.postMessage({ kind: "claim", round, tab: this.tab } satisfies TabMessage);
    await new Promise((resolve) => setTimeout(resolve, CLAIM_WINDOW_MS));
    const rivals = this.claims.get(round) ?? [];
    this.claims.delete(round);
    return rivals.every((tab) => tab >= this.tab);
  }

  /** The access-token expiry another tab recorded, if it is still ahead. */
  knownExpiry(now: number): number | null {
    const stored = Number(safeLocalStorage()?.getItem(this.expiryKey) ?? NaN);
    return Number.isFinite(stored) && stored > now ? stored : null;
  }

  close(): void {
    this.stopLeading.abort();
    this.releaseLeader?.();
    this.leader = false;
    this.channel?.close();
  }

  private receive(message: TabMessage): void {
    if (message.kind === "claim") {
      const heard = this.claims.get(message.round);
      if (heard) heard.push(message.tab);
      else this.claims.set(message.round, [message.tab]);
      return;
    }
    // A new sign-in settles every round still being claimed.
    if (message.kind === "signed-in") this.claims.clear();
    this.onMessage(message);
  }

  private storeExpiry(expiresAt: number | null): void {
    const storage = safeLocalStorage();
    if (expiresAt === null) storage?.removeItem(this.expiryKey);
    else storage?.setItem(this.expiryKey, String(expiresAt));
  }
}

function randomId(): string {
  return globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random()}`;
}

/** `localStorage`, unless absent (a server) or refused (privacy modes throw on access). */
function safeLocalStorage(): Storage | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null;
  }
}
