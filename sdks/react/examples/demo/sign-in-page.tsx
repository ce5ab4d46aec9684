import { useState } from "react";
import { IdentSphereProvider, SignedIn, SignedOut, useAuth, useSession } from "@identsphere/react";

function SignInForm() {
  const { login } = useAuth();
  const [error, setError] = useState("");
  const submit = (form: FormData) =>
    login({ email: String(form.get("email")), password: String(form.get("password")) }).catch((e) => setError(e.message));
  return (
    <form onSubmit={(event) => (event.preventDefault(), submit(new FormData(event.currentTarget)))}>
      <input name="email" type="email" placeholder="Email" />
      <input name="password" type="password" placeholder="Password" />
      <button>Sign in</button>
      <p role="alert">{error}</p>
    </form>
  );
}

function Welcome() {
  const { logout } = useAuth();
  return <p>Signed in as {useSession().user?.email} <button onClick={() => logout()}>Sign out</button></p>;
}

export const SignInPage = () => (
  <IdentSphereProvider mode="cookie">
    <SignedOut><SignInForm /></SignedOut>
    <SignedIn><Welcome /></SignedIn>
  </IdentSphereProvider>
);
