import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";

import {
  IdentSphereError,
  IdentSphereProvider,
  RequireAal2,
  SignedIn,
  SignedOut,
  useAuth,
  useSession,
} from "@identsphere/react";

function SignIn() {
  const { login, register, verifyMfa } = useAuth();
  const [error, setError] = useState("");
  const [mfaToken, setMfaToken] = useState<string | null>(null);
  const run = (action: () => Promise<unknown>) => {
    setError("");
    action().catch((e: unknown) => setError(e instanceof IdentSphereError ? `${e.code}: ${e.message}` : String(e)));
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
      <h2>Step-up area</h2>
      <RequireAal2>
        <p>Only an aal2 session sees this.</p>
      </RequireAal2>
    </>
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
