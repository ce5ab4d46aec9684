// The second factor against a real IdentSphere: TOTP enrollment and confirmation, step-up of a session
// opened before enrollment (same session id, aal2), and a sign-in that needs the second factor. Codes come
// from helpers.totp (RFC 6238 on node:crypto); the server accepts each time step once, within ±1 step, so
// the test takes the current and the next step's codes at one instant and signs in with a recovery code.
import { describe, expect, inject, it } from "vitest";

import { PASSWORD, failure, newClient, totp, uniqueEmail } from "./helpers.js";

const baseUrl = inject("baseUrl");

describe.each(["cookie", "bearer"] as const)("MFA in %s mode", (mode) => {
  it("enrolls TOTP, steps an older session up, and signs in with the second factor", async () => {
    const email = uniqueEmail();
    const laptop = newClient(baseUrl, mode).client;
    const registered = await laptop.register({ email, password: PASSWORD });
    const phone = newClient(baseUrl, mode).client;
    const before = await phone.login({ email, password: PASSWORD });
    if (before.status !== "signed-in") throw new Error("no second factor yet, so no mfa step expected");

    const enrollment = await laptop.enrollTotp();
    expect(enrollment.otpauth_uri).toMatch(/^otpauth:\/\/totp\//);
    expect(enrollment.qr_svg).toBeTruthy();
    const now = Date.now();
    const [current, next] = [totp(enrollment.secret, 0, now), totp(enrollment.secret, 1, now)];
    const { recovery_codes } = await laptop.confirmTotp(current);
    expect(recovery_codes).toHaveLength(10);
    // Confirming raises the confirming session to aal2, and the client takes the new pair.
    expect(laptop.getState()).toMatchObject({ session: { id: registered.session.id, aal: "aal2" } });
    expect(await laptop.getSession()).toMatchObject({
      session: { aal: "aal2" },
      factors: [{ type: "totp" }],
      recovery_codes_left: 10,
    });

    // Step-up of the session opened before enrollment.
    expect(phone.getState()).toMatchObject({ session: { aal: "aal1" } });
    const wrong = await failure(phone.verifyMfa({ code: current === "000000" ? "000001" : "000000" }));
    expect(wrong).toMatchObject({ code: "mfa_invalid_code", type: "authentication_error", status: 401 });
    const stepped = await phone.verifyMfa({ code: next });
    expect(stepped.session).toMatchObject({ id: before.session.id, aal: "aal2" });
    expect((await phone.getSession()).session.aal).toBe("aal2");

    // From now on a password alone is not a sign-in.
    const fresh = newClient(baseUrl, mode).client;
    const login = await fresh.login({ email, password: PASSWORD });
    expect(login).toMatchObject({ status: "mfa-required", factors: ["totp"] });
    if (login.status !== "mfa-required") return;
    expect(fresh.getState().status).toBe("loading");
    const signedIn = await fresh.verifyMfa({ mfaToken: login.mfaToken, code: recovery_codes[0] ?? "" });
    expect(signedIn.session.aal).toBe("aal2");
    expect(await fresh.getSession()).toMatchObject({ user: { email }, recovery_codes_left: 9 });
    // The mfa token completed its sign-in: it does not open a second one.
    const again = await failure(fresh.verifyMfa({ mfaToken: login.mfaToken, code: recovery_codes[1] ?? "" }));
    expect(again.code).toBe("token_invalid");
  });
});
