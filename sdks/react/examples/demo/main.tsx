import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";

import {
  IdentSphereError,
  IdentSphereProvider,
  type TotpEnrollment,
  RequireAal2,
  SignedIn,
  SignedOut,
  useAuth,
  useSession,
} from "@identsphere/react";

/** What the user is shown for a failure: the catalog code and its message. */
function message(error: unknown): string {
  return error instanceof IdentSphereError ? `${error.code}: ${error.message}` : String(error);
}

function SignIn() {
  const { login, register, verifyMfa } = useAuth();
  const [error, setError] = useState("");
  const [mfaToken, setMfaToken] = useState<string | null>(null);
  const run = (action: () => Promise<unknown>) => {
    setError("");
    action().catch((e: unknown) => setError(message(e)));
  };
  const submit = (form: FormData, create: boolean) => {
    const credentials = { email: String(form.get("email")), password: String(form.get("password")) };
    run(async () => {
      if (create) return register(credentials);
      const result = await login(credentials);
      if (result.status === "mfa-required") setMfaToken(result.mfaToken);
    });
  };
  if (mfaToken) {
    return (
      <form onSubmit={(e) => (e.preventDefault(), run(() => verifyMfa({ mfaToken, code: String(new FormData(e.currentTarget).get("code")) })))}>
        <input name="code" placeholder="6-digit code" autoComplete="one-time-code" />
        <button>Verify</button>
        {error && <p role="alert">{error}</p>}
      </form>
    );
  }
  return (
    <form onSubmit={(e) => (e.preventDefault(), submit(new FormData(e.currentTarget), false))}>
      <input name="email" type="email" placeholder="Email" autoComplete="username" />
      <input name="password" type="password" placeholder="Password" autoComplete="current-password" />
      <button>Sign in</button>
      <button type="button" onClick={(e) => submit(new FormData(e.currentTarget.form!), true)}>
        Create account
      </button>
      {error && <p role="alert">{error}</p>}
    </form>
  );
}

function Account() {
  const { user, session, organization } = useSession();
  const { logout } = useAuth();
  return (
    <>
      <p data-testid="user">{user?.email}</p>
      <p>
        Organization {organization?.name} ({organization?.role}), session {session?.id}, {session?.aal}
      </p>
      <button onClick={() => void logout()}>Sign out</button>
      <button onClick={() => void logout("global")}>Sign out everywhere</button>
      <h2>Two-factor</h2>
      <TwoFactorSetup />
      <h2>Step-up area</h2>
      <RequireAal2>
        <p>Only an aal2 session sees this.</p>
      </RequireAal2>
    </>
  );
}

/** TOTP enrollment: scan the QR code, confirm with the first code, keep the recovery codes. */
function TwoFactorSetup() {
  const { enrollTotp, confirmTotp } = useAuth();
  const [enrollment, setEnrollment] = useState<TotpEnrollment | null>(null);
  const [recoveryCodes, setRecoveryCodes] = useState<string[]>([]);
  const [error, setError] = useState("");
  const fail = (e: unknown) => setError(message(e));
  if (recoveryCodes.length > 0) return <pre data-testid="recovery-codes">{recoveryCodes.join("\n")}</pre>;
  if (!enrollment) return <button onClick={() => enrollTotp().then(setEnrollment, fail)}>Set up two-factor</button>;
  const confirm = (form: FormData) =>
    confirmTotp(String(form.get("code"))).then((c) => setRecoveryCodes(c.recovery_codes), fail);
  return (
    <form onSubmit={(e) => (e.preventDefault(), void confirm(new FormData(e.currentTarget)))}>
      <img src={enrollment.qr_svg} alt="QR code for your authenticator app" width={200} height={200} />
      <code data-testid="totp-secret">{enrollment.secret}</code>
      <input name="code" placeholder="Code from the app" autoComplete="one-time-code" />
      <button>Turn on</button>
      {error && <p role="alert">{error}</p>}
    </form>
  );
}

function Status() {
  return <p data-testid="status">{useSession().status}</p>;
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <IdentSphereProvider mode="cookie">
      <h1>IdentSphere React demo</h1>
      <Status />
      <SignedOut>
        <SignIn />
      </SignedOut>
      <SignedIn>
        <Account />
      </SignedIn>
    </IdentSphereProvider>
  </StrictMode>,
);
