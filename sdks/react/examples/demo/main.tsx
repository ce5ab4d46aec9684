import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";

import {
  IdentSphereError,
  IdentSphereProvider,
  type Identity,
  type LoginResult,
  type Passkey,
  type TotpEnrollment,
  RequireAal2,
  SignedIn,
  SignedOut,
  useAuth,
  useSession,
} from "@identsphere/react";

/** The sign-in providers the server has (scripts/demo.mjs reads them from the server's configuration). */
declare const __IDENTSPHERE_PROVIDERS__: string;
const PROVIDERS = __IDENTSPHERE_PROVIDERS__.split(",").filter(Boolean);

/** IdentSphere's URL when the page calls it on another origin; "" through the dev server's proxy. */
declare const __IDENTSPHERE_API__: string;

/** `?mode=bearer` runs the page in bearer mode, the tokens in this tab's sessionStorage. */
const BEARER = new URLSearchParams(window.location.search).get("mode") === "bearer";

/** What the user is shown for a failure: the catalog code and its message. */
function message(error: unknown): string {
  return error instanceof IdentSphereError ? `${error.code}: ${error.message}` : String(error);
}

const isCode = (error: unknown, ...codes: string[]) => error instanceof IdentSphereError && codes.includes(error.code);

function SignIn() {
  const { login, register, verifyMfa, signInWithPasskey, verifyMfaWithPasskey, signInWith, signInWithSso, handleRedirect } =
    useAuth();
  const [error, setError] = useState("");
  const [mfa, setMfa] = useState<Extract<LoginResult, { status: "mfa-required" }> | null>(null);
  // The browser runs one passkey request at a time: the button's aborts the autofill's, which this restarts.
  const [autofillRound, setAutofillRound] = useState(0);
  const run = (action: () => Promise<unknown>) => {
    setError("");
    action().catch((e: unknown) => setError(message(e)));
  };
  const answered = (result: LoginResult) => {
    if (result.status === "mfa-required") setMfa(result);
  };
  const submit = (form: FormData, create: boolean) => {
    const credentials = { email: String(form.get("email")), password: String(form.get("password")) };
    run(async () => (create ? register(credentials) : answered(await login(credentials))));
  };

  // Back from a provider: a second factor may be due (the return's one-time code became an mfa token), or
  // the sign-in failed there (`?error=`). A session is already in the state.
  useEffect(() => {
    handleRedirect().then(
      (result) => result && result.status !== "linked" && answered(result),
      (e: unknown) => setError(message(e)),
    );
  }, [handleRedirect]);

  // The passkeys in the email field's autofill (its autocomplete has "webauthn") while the form is shown.
  useEffect(() => {
    if (mfa) return;
    const controller = new AbortController();
    signInWithPasskey({ mediation: "conditional", signal: controller.signal }).then(answered, (e: unknown) => {
      // Aborted (this effect ended, or the button took over), or a browser without passkey autofill.
      if (isCode(e, "passkey_cancelled", "passkeys_unsupported")) return;
      // The autofill stayed open longer than its ceremony lives (5 minutes): a new one.
      if (isCode(e, "ceremony_expired")) return setAutofillRound((round) => round + 1);
      setError(message(e));
    });
    return () => controller.abort();
  }, [signInWithPasskey, autofillRound, mfa]);

  if (mfa) {
    const { mfaToken, factors } = mfa;
    return (
      <form onSubmit={(e) => (e.preventDefault(), run(() => verifyMfa({ mfaToken, code: String(new FormData(e.currentTarget).get("code")) })))}>
        {factors.includes("totp") && (
          <>
            <input name="code" placeholder="6-digit code" autoComplete="one-time-code" />
            <button>Verify</button>
          </>
        )}
        {factors.includes("passkey") && (
          <button type="button" onClick={() => run(() => verifyMfaWithPasskey({ mfaToken }))}>
            Use a passkey
          </button>
        )}
        {error && <p role="alert">{error}</p>}
      </form>
    );
  }
  const withPasskey = () => signInWithPasskey().then(answered).finally(() => setAutofillRound((round) => round + 1));
  const withSso = (form: FormData) => run(() => signInWithSso(String(form.get("work-email"))));
  return (
    <>
      <form onSubmit={(e) => (e.preventDefault(), submit(new FormData(e.currentTarget), false))}>
        <input name="email" type="email" placeholder="Email" autoComplete="username webauthn" />
        <input name="password" type="password" placeholder="Password" autoComplete="current-password" />
        <button>Sign in</button>
        <button type="button" onClick={(e) => submit(new FormData(e.currentTarget.form!), true)}>
          Create account
        </button>
        <button type="button" onClick={() => run(withPasskey)}>
          Sign in with a passkey
        </button>
        {PROVIDERS.map((provider) => (
          <button type="button" key={provider} onClick={() => run(() => signInWith(provider))}>
            Sign in with {provider}
          </button>
        ))}
        {error && <p role="alert">{error}</p>}
      </form>
      {/* Enterprise SSO: the address's domain finds its organization's connection (else sign in as above). */}
      <form onSubmit={(e) => (e.preventDefault(), withSso(new FormData(e.currentTarget)))}>
        <input name="work-email" type="email" aria-label="Work email" placeholder="name@company.example" />
        <button>Sign in with SSO</button>
      </form>
    </>
  );
}

function Account() {
  const { user, session, organization } = useSession();
  const { logout } = useAuth();
  return (
    <>
      <p data-testid="user">{user?.email}</p>
      <p>
        Organization {organization?.name} ({organization?.role}), session {session?.id}
      </p>
      <p data-testid="assurance">
        {session?.auth_method}, {session?.aal}
      </p>
      <button onClick={() => void logout()}>Sign out</button>
      <button onClick={() => void logout("global")}>Sign out everywhere</button>
      <h2>Passkeys</h2>
      <Passkeys />
      <h2>Linked accounts</h2>
      <Identities />
      <h2>Two-factor</h2>
      <TwoFactorSetup />
      <h2>Step-up area</h2>
      <RequireAal2>
        <p>Only an aal2 session sees this.</p>
      </RequireAal2>
    </>
  );
}

/** The user's passkeys, and registering one more (the server wants a recent sign-in for it). */
function Passkeys() {
  const { listPasskeys, registerPasskey } = useAuth();
  const [passkeys, setPasskeys] = useState<Passkey[]>([]);
  const [error, setError] = useState("");
  const fail = (e: unknown) => setError(message(e));
  useEffect(() => void listPasskeys().then(setPasskeys, fail), [listPasskeys]);
  const register = () => registerPasskey().then((added) => setPasskeys((list) => [...list, added]), fail);
  return (
    <>
      <ul data-testid="passkeys">
        {passkeys.map((p) => (
          <li key={p.id}>
            {p.name}, added {new Date(p.created_at).toLocaleString()}
          </li>
        ))}
      </ul>
      <button onClick={() => void register()}>Register a passkey</button>
      {error && <p role="alert">{error}</p>}
    </>
  );
}

/** The provider identities linked to the account, and linking one more (back here with `?linked=`). */
function Identities() {
  const { listIdentities, linkIdentity, handleRedirect } = useAuth();
  const [identities, setIdentities] = useState<Identity[]>([]);
  const [linked, setLinked] = useState("");
  const [error, setError] = useState("");
  const fail = (e: unknown) => setError(message(e));
  useEffect(() => {
    handleRedirect().then((result) => result?.status === "linked" && setLinked(`Linked ${result.provider}`), fail);
    listIdentities().then(setIdentities, fail);
  }, [handleRedirect, listIdentities]);
  return (
    <>
      <ul data-testid="identities">
        {identities.map((i) => (
          <li key={i.id}>
            {i.provider}: {i.email}
          </li>
        ))}
      </ul>
      {PROVIDERS.map((provider) => (
        <button key={provider} onClick={() => void linkIdentity(provider).catch(fail)}>
          Link {provider}
        </button>
      ))}
      {linked && <p data-testid="linked">{linked}</p>}
      {error && <p role="alert">{error}</p>}
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
    <IdentSphereProvider
      baseUrl={__IDENTSPHERE_API__}
      {...(BEARER ? { mode: "bearer", storage: sessionStorage } : { mode: "cookie" })}
    >
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
