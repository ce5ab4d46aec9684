// A mock OpenID Connect provider for the browser tests, as tests/api/provider.rs is the Rust tests': a real
// HTTP server on 127.0.0.1 with discovery, a JWKS, an authorization endpoint that approves at once as
// whoever `signInAs` named (the browser follows its plain 302), and a token endpoint that authenticates the
// client (client_secret_basic), takes each code once, and checks PKCE S256 (RFC 7636) and the redirect URI.
// ID tokens are RS256 JWTs signed with a 2048-bit RSA key (node:crypto), with `nonce` and `email_verified`,
// so IdentSphere validates them exactly as a real provider's. One client, any redirect URI.
//
// Built on node:crypto and node:http rather than a package: the packages that would fit either need a newer
// Node than the SDK's 20, or skip checks this one makes (a token request without `code_verifier` passes
// them, and they ignore the client secret), and the JWS is a few lines.
import { createHash, createSign, generateKeyPairSync, randomBytes, randomUUID, timingSafeEqual, type KeyObject } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** The person signed in at the provider: the claims it vouches for. */
export interface ProviderUser {
  sub: string;
  email: string;
  email_verified: boolean;
  name?: string;
}

/** How the next ID token goes wrong. */
export type Misbehaviour = "forged-signature";

/** What the authorization endpoint approved: the request, and who. */
interface Grant {
  user: ProviderUser;
  redirectUri: string;
  challenge: string;
  nonce: string | null;
  expiresAt: number;
}

export interface MockProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Who the next authorization requests are approved for; `null`: the person declines (`access_denied`). */
  signInAs(user: ProviderUser | null): void;
  /** Makes the next ID token go wrong. */
  misbehave(how: Misbehaviour): void;
  /** The token endpoint's answers so far, by status (200, or the refusal's). */
  tokenAnswers: number[];
  stop(): Promise<void>;
}

const base64url = (data: Buffer | string) => Buffer.from(data).toString("base64url");

/** A compact JWS, RS256. */
function sign(claims: object, key: KeyObject, kid: string): string {
  const input = `${base64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid }))}.${base64url(JSON.stringify(claims))}`;
  return `${input}.${base64url(createSign("RSA-SHA256").update(input).sign(key))}`;
}

function same(a: string, b: string): boolean {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startMockProvider(): Promise<MockProvider> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
  const kid = randomUUID();
  const clientId = `client-${randomUUID()}`;
  const clientSecret = base64url(randomBytes(24));
  const codes = new Map<string, Grant>();
  let user: ProviderUser | null = null;
  let misbehaviour: Misbehaviour | null = null;
  const tokenAnswers: number[] = [];
  let issuer = "";

  const send = (res: ServerResponse, status: number, body: object) => {
    res.writeHead(status, { "Content-Type": "application/json", "Cache-Control": "no-store" }).end(JSON.stringify(body));
  };
  const redirect = (res: ServerResponse, to: URL) => res.writeHead(302, { Location: to.toString() }).end();

  const authorize = (query: URLSearchParams, res: ServerResponse) => {
    const redirectUri = query.get("redirect_uri");
    if (query.get("client_id") !== clientId || !redirectUri || !/^https?:\/\//.test(redirectUri)) {
      // Nowhere trustworthy to send the browser: the error stays here (RFC 6749 §4.1.2.1).
      return send(res, 400, { error: "invalid_request", error_description: "unknown client or redirect_uri" });
    }
    const back = new URL(redirectUri);
    const state = query.get("state");
    if (state !== null) back.searchParams.set("state", state);
    const challenge = query.get("code_challenge");
    const refuse = (error: string) => (back.searchParams.set("error", error), redirect(res, back));
    if (query.get("response_type") !== "code") return refuse("unsupported_response_type");
    if (!challenge || query.get("code_challenge_method") !== "S256") return refuse("invalid_request");
    if (!query.get("scope")?.split(" ").includes("openid")) return refuse("invalid_scope");
    if (!user) return refuse("access_denied");
    const code = base64url(randomBytes(24));
    codes.set(code, { user, redirectUri, challenge, nonce: query.get("nonce"), expiresAt: Date.now() + 60_000 });
    back.searchParams.set("code", code);
    redirect(res, back);
  };

  const token = (req: IncomingMessage, form: URLSearchParams, res: ServerResponse) => {
    const answer = (status: number, body: object) => (tokenAnswers.push(status), send(res, status, body));
    const [scheme, encoded = ""] = (req.headers.authorization ?? "").split(" ");
    const [id = "", secret = ""] = Buffer.from(encoded, "base64").toString().split(":");
    if (scheme !== "Basic" || !same(decodeURIComponent(id), clientId) || !same(decodeURIComponent(secret), clientSecret)) {
      return answer(401, { error: "invalid_client" });
    }
    if (form.get("grant_type") !== "authorization_code") return answer(400, { error: "unsupported_grant_type" });
    const code = form.get("code") ?? "";
    const grant = codes.get(code);
    codes.delete(code);
    const verifier = form.get("code_verifier") ?? "";
    const proven = grant && same(base64url(createHash("sha256").update(verifier).digest()), grant.challenge);
    if (!grant || grant.expiresAt < Date.now() || grant.redirectUri !== form.get("redirect_uri") || !proven) {
      return answer(400, { error: "invalid_grant" });
    }
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: issuer,
      aud: clientId,
      iat: now,
      exp: now + 300,
      ...(grant.nonce === null ? {} : { nonce: grant.nonce }),
      ...grant.user,
    };
    const key = misbehaviour === "forged-signature" ? other : privateKey;
    misbehaviour = null;
    answer(200, {
      access_token: base64url(randomBytes(24)),
      token_type: "Bearer",
      expires_in: 300,
      id_token: sign(claims, key, kid),
    });
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", issuer);
    const route = `${req.method} ${url.pathname}`;
    if (route === "GET /.well-known/openid-configuration") {
      return send(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ["code"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
        code_challenge_methods_supported: ["S256"],
        token_endpoint_auth_methods_supported: ["client_secret_basic"],
      });
    }
    if (route === "GET /jwks") {
      return send(res, 200, { keys: [{ ...publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" }] });
    }
    if (route === "GET /authorize") return authorize(url.searchParams, res);
    if (route === "POST /token") {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk));
      req.on("end", () => token(req, new URLSearchParams(body), res));
      return;
    }
    send(res, 404, { error: "not_found" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    issuer,
    clientId,
    clientSecret,
    signInAs: (next) => void (user = next),
    misbehave: (how) => void (misbehaviour = how),
    tokenAnswers,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
