// What the integration tests need to act like a browser in Node: a cookie jar (Node's fetch keeps no
// cookies) that also sends the page's Origin, unique accounts, and TOTP codes.
import { createHmac, randomUUID } from "node:crypto";

import { expect } from "vitest";

import { IdentSphereClient, IdentSphereError, type Mode } from "../../src/client/index.js";

interface StoredCookie {
  value: string;
  path: string;
  expires: number;
}

/** A fetch with a browser's cookie rules as far as IdentSphere uses them: Path, Max-Age, clearing. */
export function browserFetch(origin: string): typeof fetch & { cookies: Map<string, StoredCookie> } {
  const cookies = new Map<string, StoredCookie>();
  const jarFetch = async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input));
    const now = Date.now();
    const header = [...cookies]
      .filter(([, c]) => c.expires > now && (url.pathname === c.path || url.pathname.startsWith(`${c.path}/`) || c.path === "/"))
      .map(([name, c]) => `${name}=${c.value}`)
      .join("; ");
    const headers = new Headers(init.headers);
    headers.set("Origin", origin);
    if (init.credentials === "include" && header) headers.set("Cookie", header);
    const response = await fetch(url, { ...init, headers });
    if (init.credentials !== "include") return response;
    for (const line of response.headers.getSetCookie()) {
      const [pair = "", ...attributes] = line.split(";").map((part) => part.trim());
      const name = pair.slice(0, pair.indexOf("="));
      const attribute = (key: string) =>
        attributes.find((a) => a.toLowerCase().startsWith(`${key}=`))?.slice(key.length + 1);
      const maxAge = Number(attribute("max-age") ?? Infinity);
      cookies.set(name, {
        value: pair.slice(name.length + 1),
        path: attribute("path") ?? "/",
        expires: now + maxAge * 1000,
      });
    }
    return response;
  };
  return Object.assign(jarFetch, { cookies });
}

/** A client in `mode`; cookie mode gets its own jar, with `origin` as the page's origin (default: the API's). */
export function newClient(baseUrl: string, mode: Mode, origin = baseUrl) {
  const jar = browserFetch(origin);
  const client = new IdentSphereClient({ baseUrl, mode, fetch: jar, syncTabs: false });
  return { client, jar };
}

/** The `IdentSphereError` that `promise` rejects with (fails the test if it resolves or rejects otherwise). */
export async function failure(promise: Promise<unknown>): Promise<IdentSphereError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IdentSphereError);
  return error as IdentSphereError;
}

export function uniqueEmail(): string {
  return `sdk-${randomUUID()}@example.com`;
}

export const PASSWORD = "correct horse battery staple";

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s steps) of a base32 secret, `stepOffset` steps from now. */
export function totp(secret: string, stepOffset = 0, now = Date.now()): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const char of secret.replace(/=+$/, "").toUpperCase()) {
    bits += alphabet.indexOf(char).toString(2).padStart(5, "0");
  }
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((byte) => parseInt(byte, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(now / 30_000) + stepOffset));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = (mac[mac.length - 1] ?? 0) & 0xf;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return code.toString().padStart(6, "0");
}
