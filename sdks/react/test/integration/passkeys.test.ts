// Passkeys against a real IdentSphere, in both modes, with the software authenticator (authenticator.ts) as
// the browser's WebAuthn: registration, a discoverable sign-in (aal2 with user verification, aal1 without),
// the passkey as the second factor of a password sign-in and for step-up, listing, renaming and deleting, and
// the server's codes as the client reports them. Passkeys need an RP ID, so this file starts its own server
// with a public base URL on localhost.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from "vitest";

import { startIdentSphere, type RunningIdentSphere } from "../../scripts/identsphere.mjs";
import { softAuthenticator } from "./authenticator.js";
import { PASSWORD, failure, newClient, uniqueEmail } from "./helpers.js";

/** The page's origin, as the browser would name it: IdentSphere's public base URL (nothing listens there). */
const ORIGIN = "http://localhost:5173";

let server: RunningIdentSphere;

beforeAll(async () => {
  server = await startIdentSphere({ IDENTSPHERE_PUBLIC_BASE_URL: ORIGIN });
});

afterAll(() => server?.stop());

afterEach(() => vi.unstubAllGlobals());

/** Gives the test's "browser" this authenticator, with passkey autofill. */
function useAuthenticator(authenticator: ReturnType<typeof softAuthenticator>) {
  vi.stubGlobal("navigator", { credentials: authenticator.credentials });
  vi.stubGlobal("PublicKeyCredential", { isConditionalMediationAvailable: async () => true });
  return authenticator;
}

describe.each(["cookie", "bearer"] as const)("passkeys in %s mode", (mode) => {
  const client = () => newClient(server.baseUrl, mode, ORIGIN).client;

  async function signedUp() {
    const email = uniqueEmail();
    const laptop = client();
    await laptop.register({ email, password: PASSWORD });
    return { email, laptop };
  }

  it("registers a passkey, signs in with it at aal2, lists, renames and deletes it", async () => {
    const authenticator = useAuthenticator(softAuthenticator(ORIGIN));
    const { email, laptop } = await signedUp();
    const passkey = await laptop.registerPasskey({ name: "Laptop" });
    expect(passkey).toMatchObject({ name: "Laptop", last_used_at: null, backed_up: false, transports: ["internal"] });
    expect(authenticator.held).toHaveLength(1);

    // No email: the passkey says whose it is.
    const phone = client();
    const signedIn = await phone.signInWithPasskey({ mediation: "conditional" });
    expect(signedIn).toMatchObject({ status: "signed-in", user: { email }, session: { auth_method: "passkey", aal: "aal2" } });
    expect((await phone.getSession()).session).toMatchObject({ auth_method: "passkey", aal: "aal2" });

    const [listed] = await phone.listPasskeys();
    expect(listed).toMatchObject({ id: passkey.id, name: "Laptop" });
    expect(listed?.last_used_at).not.toBeNull();
    expect(await phone.renamePasskey(passkey.id, "Old laptop")).toMatchObject({ id: passkey.id, name: "Old laptop" });

    await phone.deletePasskey(passkey.id);
    expect(await laptop.listPasskeys()).toEqual([]);
    expect(await failure(phone.renamePasskey(passkey.id, "Gone"))).toMatchObject({ code: "passkey_not_found", status: 404 });
    expect(await failure(client().signInWithPasskey())).toMatchObject({ code: "passkey_invalid", status: 401 });
  });

  it("a passkey is the second factor of a password sign-in, and steps an older session up", async () => {
    useAuthenticator(softAuthenticator(ORIGIN));
    const { email, laptop } = await signedUp();
    const older = client();
    const before = await older.login({ email, password: PASSWORD });
    if (before.status !== "signed-in") throw new Error("no second factor yet, so no mfa step expected");
    await laptop.registerPasskey();

    const fresh = client();
    const login = await fresh.login({ email, password: PASSWORD });
    expect(login).toMatchObject({ status: "mfa-required", factors: ["passkey"] });
    if (login.status !== "mfa-required") return;
    const completed = await fresh.verifyMfaWithPasskey({ mfaToken: login.mfaToken });
    expect(completed.session).toMatchObject({ auth_method: "password", aal: "aal2" });
    expect(fresh.getState()).toMatchObject({ status: "signed-in", session: { aal: "aal2" } });

    expect(older.getState()).toMatchObject({ session: { aal: "aal1" } });
    const stepped = await older.verifyMfaWithPasskey();
    expect(stepped.session).toMatchObject({ id: before.session.id, aal: "aal2" });
    expect((await older.getSession()).session.aal).toBe("aal2");
  });

  it("a passkey that does not verify its user signs in at aal1", async () => {
    useAuthenticator(softAuthenticator(ORIGIN, { userVerification: false }));
    const { laptop } = await signedUp();
    await laptop.registerPasskey();
    expect(await client().signInWithPasskey()).toMatchObject({ status: "signed-in", session: { auth_method: "passkey", aal: "aal1" } });
  });
});

it("a server whose public base URL is an IP address has no passkeys: passkeys_unavailable", async () => {
  useAuthenticator(softAuthenticator("http://127.0.0.1"));
  const { client } = newClient(inject("baseUrl"), "bearer");
  await client.register({ email: uniqueEmail(), password: PASSWORD });
  expect(await failure(client.registerPasskey())).toMatchObject({ code: "passkeys_unavailable", status: 404 });
  expect(await failure(client.signInWithPasskey())).toMatchObject({ code: "passkeys_unavailable", status: 404 });
});
