// The client against a real IdentSphere, in both modes: sign-up, sign-in, session, refresh, logout and the
// error envelopes. Cookie mode runs on a cookie jar that follows the browser's rules (helpers.ts).
import { describe, expect, inject, it } from "vitest";

import { IdentSphereClient, type Mode, type TokenStorage } from "../../src/client/index.js";
import { PASSWORD, browserFetch, failure, newClient, uniqueEmail } from "./helpers.js";

const baseUrl = inject("baseUrl");

async function registered(mode: Mode) {
  const { client, jar } = newClient(baseUrl, mode);
  const email = uniqueEmail();
  const info = await client.register({ email, password: PASSWORD });
  return { client, jar, email, info };
}

describe.each(["cookie", "bearer"] as const)("%s mode", (mode) => {
  it("registers, then login, session, refresh and logout follow one session family", async () => {
    const { email } = await registered(mode);
    const { client } = newClient(baseUrl, mode);

    const login = await client.login({ email, password: PASSWORD });
    expect(login.status).toBe("signed-in");
    if (login.status !== "signed-in") return;
    expect(login.user.email).toBe(email);
    expect(login.organization.role).toBe("owner");
    expect(client.getState()).toMatchObject({ status: "signed-in", user: { email } });

    const session = await client.getSession();
    expect(session.session.id).toBe(login.session.id);

    const before = client.getAccessToken();
    const refreshed = await client.refresh();
    expect(refreshed.session.id).toBe(login.session.id);
    expect(refreshed.organization).toEqual(login.organization);
    if (mode === "bearer") expect(client.getAccessToken()).not.toBe(before);
    expect((await client.getSession()).session.id).toBe(login.session.id);

    await client.logout();
    expect(client.getState()).toEqual({ status: "signed-out" });
    expect(client.getAccessToken()).toBeNull();
    expect((await failure(client.getSession())).code).toBe("token_missing");
  });

  it("a reload finds the session (jar or storage) until logout", async () => {
    // Bearer mode keeps the pair in the storage, cookie mode in the jar: what a page reload keeps.
    const storage = new Map<string, string>();
    const saved: TokenStorage = {
      getItem: (k) => storage.get(k) ?? null,
      setItem: (k, v) => void storage.set(k, v),
      removeItem: (k) => void storage.delete(k),
    };
    const options = { baseUrl, mode, storage: saved, fetch: browserFetch(baseUrl), syncTabs: false };
    const email = uniqueEmail();
    await new IdentSphereClient(options).register({ email, password: PASSWORD });

    const reloaded = new IdentSphereClient(options);
    expect(reloaded.getState().status).toBe("loading");
    expect(await reloaded.start()).toMatchObject({ status: "signed-in", user: { email } });
    await reloaded.logout();
    reloaded.stop();

    const afterLogout = new IdentSphereClient(options);
    expect(await afterLogout.start()).toEqual({ status: "signed-out" });
    afterLogout.stop();
  });

  it("starts signed out without a session", async () => {
    const { client } = newClient(baseUrl, mode);
    expect(await client.start()).toEqual({ status: "signed-out" });
    client.stop();
  });

  it("global logout ends the user's other sessions, which then sign out", async () => {
    const { email } = await registered(mode);
    const phone = newClient(baseUrl, mode).client;
    const laptop = newClient(baseUrl, mode).client;
    await phone.login({ email, password: PASSWORD });
    await laptop.login({ email, password: PASSWORD });

    await phone.logout("global");

    expect((await failure(laptop.getSession())).code).toBe("token_revoked");
    expect(laptop.getState()).toEqual({ status: "signed-out" });
  });

  it("logout of the others ends them; this client's state follows what its credentials are worth", async () => {
    const { client, email } = await registered(mode);
    const other = newClient(baseUrl, mode).client;
    await other.login({ email, password: PASSWORD });

    await client.logout("others");

    expect((await failure(other.getSession())).code).toBe("token_revoked");
    // This session, and in cookie mode its cookies, stay.
    expect(client.getState().status).toBe("signed-in");
    await client.getSession();
  });

  it("reports the server's envelope for a wrong password", async () => {
    const { email } = await registered(mode);
    const { client } = newClient(baseUrl, mode);
    const error = await failure(client.login({ email, password: "not the password" }));
    expect(error).toMatchObject({
      code: "invalid_credentials",
      type: "authentication_error",
      status: 401,
      message: "wrong password or unknown email",
    });
    expect(error.requestId).toBeTruthy();
    expect(client.getState().status).toBe("loading");
  });
});

describe("error envelopes", () => {
  const { client } = newClient(baseUrl, "bearer");

  it("email_taken", async () => {
    const { email } = await registered("bearer");
    const error = await failure(client.register({ email, password: PASSWORD }));
    expect(error).toMatchObject({ code: "email_taken", type: "conflict_error", status: 409 });
  });

  it("weak_password and invalid_email", async () => {
    expect(await failure(client.register({ email: uniqueEmail(), password: "short" }))).toMatchObject({
      code: "weak_password",
      type: "invalid_request_error",
      status: 422,
    });
    expect(await failure(client.register({ email: "not-an-email", password: PASSWORD }))).toMatchObject({
      code: "invalid_email",
      status: 422,
    });
  });

  it("csrf_rejected for a cookie refresh from a foreign origin", async () => {
    const { email } = await registered("cookie");
    const foreign = newClient(baseUrl, "cookie", "https://evil.example").client;
    await foreign.login({ email, password: PASSWORD });
    const error = await failure(foreign.refresh());
    expect(error).toMatchObject({ code: "csrf_rejected", type: "permission_error", status: 403 });
    // Refused, not ended: the session is still there.
    expect(foreign.getState().status).toBe("signed-in");
  });

  it("a network failure is an IdentSphereError too", async () => {
    const unreachable = new IdentSphereClient({ baseUrl: "http://127.0.0.1:1", mode: "bearer" });
    expect(await failure(unreachable.login({ email: uniqueEmail(), password: PASSWORD }))).toMatchObject({
      code: "network_error",
      type: "client_error",
      status: 0,
    });
  });
});
