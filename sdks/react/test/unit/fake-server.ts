// A stand-in for IdentSphere's HTTP answers in the unit and component tests, which test rendering and state,
// not the protocol (the integration tests use the real server). Each call is recorded.
import type { SessionInfo, TokenResponse } from "../../src/client/index.js";

export const INFO: SessionInfo = {
  user: { id: "u1", email: "ada@example.com", email_verified: false, display_name: null, created_at: "2026-01-01T00:00:00Z" },
  session: {
    id: "s1",
    organization_id: "o1",
    aal: "aal1",
    auth_method: "password",
    auth_time: 1_790_000_000,
    expires_at: "2026-12-31T00:00:00Z",
  },
  organization: { id: "o1", slug: "ada", name: "Ada", role: "owner" },
};

export function tokenResponse(info: SessionInfo = INFO, expiresIn = 900): TokenResponse {
  return {
    token_type: "Bearer",
    access_token: "at",
    expires_in: expiresIn,
    refresh_token: "rt",
    user: info.user,
    session: info.session,
  };
}

type Handler = (body: unknown) => { status: number; body?: unknown };

export function json(status: number, body?: unknown) {
  return { status, body };
}

export function envelope(status: number, code: string, type = "authentication_error") {
  return json(status, { error: { code, type, message: `${code} (fake)` } });
}

/** A request as the fake server saw it. */
export interface SeenRequest {
  key: string;
  url: string;
  body: unknown;
  credentials: RequestCredentials | undefined;
  authorization: string | null;
}

/**
 * A fetch answering `"METHOD /path"` keys from `routes`; anything else is a 404 envelope. `calls` has the
 * keys, `requests` the details.
 */
export function fakeFetch(routes: Record<string, Handler>) {
  const calls: string[] = [];
  const requests: SeenRequest[] = [];
  const fetch = async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const key = `${init.method ?? "GET"} ${new URL(String(input), "http://app.test").pathname}`;
    const body: unknown = init.body ? JSON.parse(String(init.body)) : undefined;
    calls.push(key);
    requests.push({
      key,
      url: String(input),
      body,
      credentials: init.credentials,
      authorization: new Headers(init.headers).get("Authorization"),
    });
    const handler = routes[key];
    const answer = handler ? handler(body) : envelope(404, "not_found");
    if (answer.status === 204) return new Response(null, { status: 204 });
    return new Response(JSON.stringify(answer.body), {
      status: answer.status,
      headers: { "Content-Type": "application/json", "X-Request-Id": "req-1" },
    });
  };
  return Object.assign(fetch as typeof globalThis.fetch, { calls, requests });
}
