// The WebAuthn JSON both ways, by the browser's own methods and by the fallback for browsers without them,
// and the client's ceremonies around a stand-in for `navigator.credentials` (jsdom has no WebAuthn): what
// goes to the server, how the browser's failures are reported, one browser request at a time. The real
// browser and authenticator are the end-to-end test's.
import { afterEach, describe, expect, it, vi } from "vitest";

import { IdentSphereClient } from "../../src/client/index.js";
import {
  base64urlDecode,
  base64urlEncode,
  creationOptionsFromJSON,
  credentialToJSON,
  requestOptionsFromJSON,
} from "../../src/client/webauthn.js";
import { INFO, envelope, fakeFetch, json, tokenResponse } from "./fake-server.js";

const bytes = (...values: number[]) => new Uint8Array(values);
const text = (value: string) => new TextEncoder().encode(value);

/** What IdentSphere answers to `POST /v1/auth/passkeys/registration/options`, as captured from the server. */
const CREATION: PublicKeyCredentialCreationOptionsJSON = {
  rp: { name: "IdentSphere", id: "localhost" },
  user: { id: "5vVMy-PJRw2Hmq379kY7TQ", name: "ada@example.com", displayName: "ada@example.com" },
  challenge: "7wGML7Z1dL5qdf8qNQIYplXUZClBBp4m4ivX4nNSP9A",
  pubKeyCredParams: [
    { type: "public-key", alg: -7 },
    { type: "public-key", alg: -257 },
  ],
  timeout: 300000,
  excludeCredentials: [{ type: "public-key", id: "AQID", transports: ["internal"] }],
  authenticatorSelection: { residentKey: "required", requireResidentKey: true, userVerification: "preferred" },
  attestation: "none",
};

const REQUEST: PublicKeyCredentialRequestOptionsJSON = {
  challenge: "xpASXR1v0SugkBRgTlbpAoYeNqxcZN5sAehBLB-Hy3g",
  timeout: 300000,
  rpId: "localhost",
  allowCredentials: [],
  userVerification: "preferred",
};

/** A credential as a browser without `toJSON` gives it (the fallback's input). */
function registration(): PublicKeyCredential {
  return {
    id: "AQID",
    rawId: bytes(1, 2, 3).buffer,
    type: "public-key",
    authenticatorAttachment: "platform",
    getClientExtensionResults: () => ({ credProps: { rk: true } }),
    response: {
      clientDataJSON: text('{"type":"webauthn.create"}').buffer,
      attestationObject: bytes(0xa3, 0xfb, 0xff).buffer,
      getTransports: () => ["internal", "hybrid"],
    },
  } as unknown as PublicKeyCredential;
}

function assertion(userHandle: ArrayBuffer | null = bytes(0xfe, 0xff).buffer): PublicKeyCredential {
  return {
    id: "AQID",
    rawId: bytes(1, 2, 3).buffer,
    type: "public-key",
    authenticatorAttachment: null,
    getClientExtensionResults: () => ({}),
    response: {
      clientDataJSON: text('{"type":"webauthn.get"}').buffer,
      authenticatorData: bytes(0x49, 0x96).buffer,
      signature: bytes(0x30, 0x45, 0xff).buffer,
      userHandle,
    },
  } as unknown as PublicKeyCredential;
}

describe("base64url", () => {
  it("round-trips every byte value, URL-safe and unpadded", () => {
    const all = new Uint8Array(256).map((_, i) => i);
    const encoded = base64urlEncode(all);
    expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(base64urlDecode(encoded)).toEqual(all);
    expect(base64urlEncode(bytes(0xfb, 0xff))).toBe("-_8");
  });

  it("encodes only a view's own bytes, and decodes padded input", () => {
    expect(base64urlEncode(new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4))).toBe("AQID");
    expect(base64urlDecode("-_8=")).toEqual(bytes(0xfb, 0xff));
  });
});

describe("options from JSON", () => {
  it("use the browser's parse methods where it has them", () => {
    const parsed = { challenge: bytes(1) } as unknown as PublicKeyCredentialCreationOptions;
    const pkc = { parseCreationOptionsFromJSON: vi.fn(() => parsed), parseRequestOptionsFromJSON: vi.fn() };
    expect(creationOptionsFromJSON(CREATION, pkc)).toBe(parsed);
    expect(pkc.parseCreationOptionsFromJSON).toHaveBeenCalledWith(CREATION);
    requestOptionsFromJSON(REQUEST, pkc);
    expect(pkc.parseRequestOptionsFromJSON).toHaveBeenCalledWith(REQUEST);
  });

  it("fallback: creation options with the challenge, user id and excluded ids decoded, the rest as it was", () => {
    const options = creationOptionsFromJSON(CREATION, {});
    expect(options.challenge).toEqual(base64urlDecode(CREATION.challenge));
    expect(options.user).toEqual({ ...CREATION.user, id: base64urlDecode(CREATION.user.id) });
    expect(options.excludeCredentials).toEqual([{ type: "public-key", id: bytes(1, 2, 3), transports: ["internal"] }]);
    const { challenge, user, excludeCredentials, ...rest } = options;
    const { challenge: _c, user: _u, excludeCredentials: _e, ...restJSON } = CREATION;
    expect(rest).toEqual(restJSON);
  });

  it("fallback: request options with the challenge and allowed ids decoded", () => {
    expect(requestOptionsFromJSON(REQUEST, {})).toEqual({ ...REQUEST, challenge: base64urlDecode(REQUEST.challenge) });
    const named = requestOptionsFromJSON({ ...REQUEST, allowCredentials: [{ type: "public-key", id: "AQID" }] }, {});
    expect(named.allowCredentials).toEqual([{ type: "public-key", id: bytes(1, 2, 3) }]);
  });
});

describe("credential to JSON", () => {
  it("uses the credential's toJSON where it has one", () => {
    const own = { id: "from toJSON" };
    expect(credentialToJSON({ ...assertion(), toJSON: () => own } as PublicKeyCredential)).toBe(own);
  });

  it("falls back when toJSON throws: an extension's credential inheriting the browser's toJSON", () => {
    const illegal = () => {
      throw new TypeError("Illegal invocation");
    };
    expect(credentialToJSON({ ...assertion(), toJSON: illegal } as PublicKeyCredential)).toEqual(credentialToJSON(assertion()));
  });

  it("fallback: a registration as toJSON gives it", () => {
    expect(credentialToJSON(registration())).toEqual({
      id: "AQID",
      rawId: "AQID",
      type: "public-key",
      authenticatorAttachment: "platform",
      clientExtensionResults: { credProps: { rk: true } },
      response: {
        clientDataJSON: base64urlEncode(text('{"type":"webauthn.create"}')),
        attestationObject: "o_v_",
        transports: ["internal", "hybrid"],
      },
    });
  });

  it("fallback: an assertion as toJSON gives it, without userHandle or attachment when the browser has none", () => {
    expect(credentialToJSON(assertion())).toEqual({
      id: "AQID",
      rawId: "AQID",
      type: "public-key",
      clientExtensionResults: {},
      response: {
        clientDataJSON: base64urlEncode(text('{"type":"webauthn.get"}')),
        authenticatorData: "SZY",
        signature: "MEX_",
        userHandle: "_v8",
      },
    });
    expect(credentialToJSON(assertion(null)).response).not.toHaveProperty("userHandle");
  });
});

/** What the tests read of a `navigator.credentials` call. */
interface BrowserRequest {
  publicKey?: { challenge: BufferSource };
  mediation?: CredentialMediationRequirement;
  signal?: AbortSignal;
}

/**
 * A browser's WebAuthn as far as the client uses it: `create` and `get` answer with `answer`, which sees the
 * request (to reject, or to wait for the abort); each call is recorded.
 */
function stubWebAuthn(answer: (request: BrowserRequest) => Promise<unknown>, conditional = true) {
  const calls: BrowserRequest[] = [];
  const call = (request: BrowserRequest) => (calls.push(request), answer(request));
  Object.defineProperty(navigator, "credentials", { value: { create: call, get: call }, configurable: true });
  vi.stubGlobal("PublicKeyCredential", { isConditionalMediationAvailable: async () => conditional });
  return calls;
}

/** Rejects as a browser does when the request's signal aborts. */
const untilAborted = ({ signal }: BrowserRequest) =>
  new Promise((_, reject) => signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))));

const CEREMONY = { ceremony_id: "c1", publicKey: REQUEST };

describe("passkey ceremonies", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    Reflect.deleteProperty(navigator, "credentials");
  });

  it("a sign-in sends the ceremony and the credential, and signs in", async () => {
    const calls = stubWebAuthn(async () => assertion());
    const bodies: unknown[] = [];
    const fetch = fakeFetch({
      "POST /v1/auth/passkeys/authentication/options": (body) => (bodies.push(body), json(200, CEREMONY)),
      "POST /v1/auth/passkeys/authentication": (body) => (bodies.push(body), json(200, tokenResponse())),
      "GET /v1/auth/session": () => json(200, INFO),
    });
    const client = new IdentSphereClient({ fetch, syncTabs: false });
    const result = await client.signInWithPasskey({ organization: "ada" });
    client.stop();
    expect(result).toMatchObject({ status: "signed-in", user: { email: INFO.user.email } });
    expect(calls[0]?.publicKey?.challenge).toEqual(base64urlDecode(REQUEST.challenge));
    expect(calls[0]).not.toHaveProperty("mediation");
    expect(bodies).toEqual([
      { organization: "ada" },
      { ceremony_id: "c1", credential: credentialToJSON(assertion()), organization: "ada" },
    ]);
  });

  it("reports a dismissed dialog as passkey_cancelled and a passkey the authenticator has as passkey_exists", async () => {
    const fetch = fakeFetch({
      "POST /v1/auth/passkeys/authentication/options": () => json(200, CEREMONY),
      "POST /v1/auth/passkeys/registration/options": () => json(200, { ceremony_id: "c2", publicKey: CREATION }),
    });
    const client = new IdentSphereClient({ fetch, syncTabs: false });
    stubWebAuthn(async () => Promise.reject(new DOMException("The operation either timed out or was not allowed.", "NotAllowedError")));
    await expect(client.signInWithPasskey()).rejects.toMatchObject({ code: "passkey_cancelled", type: "client_error", status: 0 });
    stubWebAuthn(async () => Promise.reject(new DOMException("The user attempted to register an authenticator that contains one of the credentials already registered with the relying party.", "InvalidStateError")));
    await expect(client.registerPasskey()).rejects.toMatchObject({ code: "passkey_exists", status: 0 });
    stubWebAuthn(async () => Promise.reject(new DOMException("This is an invalid domain.", "SecurityError")));
    const error = await client.signInWithPasskey().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "webauthn_error", message: "navigator.credentials.get: SecurityError: This is an invalid domain." });
    expect(fetch.calls).not.toContain("POST /v1/auth/passkeys/authentication");
  });

  it("without WebAuthn, or autofill for a conditional sign-in, reports passkeys_unsupported before any request", async () => {
    const fetch = fakeFetch({});
    const client = new IdentSphereClient({ fetch, syncTabs: false });
    await expect(client.registerPasskey()).rejects.toMatchObject({ code: "passkeys_unsupported" });
    stubWebAuthn(async () => assertion(), false);
    await expect(client.signInWithPasskey({ mediation: "conditional" })).rejects.toMatchObject({ code: "passkeys_unsupported" });
    expect(fetch.calls).toEqual([]);
  });

  it("a new ceremony aborts the open one; the caller's signal aborts its own", async () => {
    const calls = stubWebAuthn(untilAborted);
    const fetch = fakeFetch({ "POST /v1/auth/passkeys/authentication/options": () => json(200, CEREMONY) });
    const client = new IdentSphereClient({ fetch, syncTabs: false });
    const autofill = client.signInWithPasskey({ mediation: "conditional" });
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    expect(calls[0]?.mediation).toBe("conditional");

    const controller = new AbortController();
    const modal = client.signInWithPasskey({ signal: controller.signal });
    await expect(autofill).rejects.toMatchObject({ code: "passkey_cancelled" });
    await vi.waitFor(() => expect(calls).toHaveLength(2));
    expect(calls[1]?.signal?.aborted).toBe(false);
    controller.abort("the page's own reason");
    await expect(modal).rejects.toMatchObject({ code: "passkey_cancelled" });
  });

  it("a call whose signal aborted before it started makes no request and leaves the open one", async () => {
    const calls = stubWebAuthn(untilAborted);
    const fetch = fakeFetch({ "POST /v1/auth/passkeys/authentication/options": () => json(200, CEREMONY) });
    const client = new IdentSphereClient({ fetch, syncTabs: false });
    void client.signInWithPasskey({ mediation: "conditional" });
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    // React's StrictMode runs an effect, its cleanup and the effect again at once: the first call is aborted
    // while the client still checks for WebAuthn.
    const controller = new AbortController();
    const unmounted = client.signInWithPasskey({ mediation: "conditional", signal: controller.signal });
    controller.abort();
    await expect(unmounted).rejects.toMatchObject({ code: "passkey_cancelled" });
    expect(fetch.calls).toHaveLength(1);
    expect(calls[0]?.signal?.aborted).toBe(false);
  });

  it("a passkey completes an mfa sign-in, or steps the session up with its refresh token", async () => {
    stubWebAuthn(async () => assertion());
    const bodies: Record<string, unknown[]> = { options: [], verify: [] };
    const fetch = fakeFetch({
      "POST /v1/auth/passkeys/authentication/options": (body) => (bodies.options?.push(body), json(200, CEREMONY)),
      "POST /v1/auth/mfa/verify": (body) => (bodies.verify?.push(body), json(200, tokenResponse())),
      "GET /v1/auth/session": () => json(200, INFO),
    });
    const client = new IdentSphereClient({ mode: "bearer", fetch });
    await client.verifyMfaWithPasskey({ mfaToken: "mfa" });
    await client.verifyMfaWithPasskey();
    client.stop();
    const passkey = { ceremony_id: "c1", credential: credentialToJSON(assertion()) };
    expect(bodies).toEqual({
      options: [{ mfa_token: "mfa" }, { step_up: true }],
      verify: [
        { mfa_token: "mfa", passkey },
        { passkey, refresh_token: "rt" },
      ],
    });
  });

  it("deleting sends the password only when there is one", async () => {
    const bodies: unknown[] = [];
    const fetch = fakeFetch({
      "DELETE /v1/auth/passkeys/p%2F1": (body) => (bodies.push(body), json(204)),
      "DELETE /v1/auth/passkeys/p1": () => envelope(401, "reauthentication_required"),
    });
    const client = new IdentSphereClient({ fetch, syncTabs: false });
    await client.deletePasskey("p/1");
    await client.deletePasskey("p/1", { password: "pw" });
    expect(bodies).toEqual([undefined, { password: "pw" }]);
    await expect(client.deletePasskey("p1")).rejects.toMatchObject({ code: "reauthentication_required" });
  });
});
