//! React bindings over `IdentSphereClient`: one client per provider, its state read with
//! `useSyncExternalStore` (so every component sees the same state in the same render, and the server render
//! is `loading`), and components that gate on it. Nothing here runs at import.

import {
  createContext,
  useContext,
  useEffect,
  useMemo,
  useState,
  useSyncExternalStore,
  type FormEvent,
  type ReactNode,
} from "react";

import { IdentSphereClient, type ClientOptions } from "../client/client.js";
import type { AuthState, Organization, Session, User } from "../client/types.js";

const ClientContext = createContext<IdentSphereClient | null>(null);
const LOADING: AuthState = { status: "loading" };

export interface IdentSphereProviderProps extends ClientOptions {
  /** A client you created yourself (tests, or to call it outside React); the other options are ignored. */
  client?: IdentSphereClient;
  children?: ReactNode;
}

/** Creates the client once, finds out whether a session exists, and keeps it refreshed while mounted. */
export function IdentSphereProvider({ client, children, ...options }: IdentSphereProviderProps) {
  // The options are read once, like a store's configuration: changing them later has no effect.
  const [instance] = useState(() => client ?? new IdentSphereClient(options));
  useEffect(() => {
    void instance.start();
    return () => instance.stop();
  }, [instance]);
  return <ClientContext.Provider value={instance}>{children}</ClientContext.Provider>;
}

/** The client of the nearest `IdentSphereProvider`. */
export function useIdentSphereClient(): IdentSphereClient {
  const client = useContext(ClientContext);
  if (!client) throw new Error("useIdentSphereClient: no <IdentSphereProvider> above this component");
  return client;
}

export interface SessionView {
  status: AuthState["status"];
  user: User | null;
  session: Session | null;
  organization: Organization | null;
}

/** The session as the UI renders it; `loading` until the provider has asked the server (and during SSR). */
export function useSession(): SessionView {
  const client = useIdentSphereClient();
  const state = useSyncExternalStore(client.subscribe, client.getState, () => LOADING);
  return useMemo(
    () =>
      state.status === "signed-in"
        ? { status: state.status, user: state.user, session: state.session, organization: state.organization }
        : { status: state.status, user: null, session: null, organization: null },
    [state],
  );
}

/**
 * The actions: register, login, verifyMfa, logout, refresh, TOTP enrollment, passkeys, sign-in through a
 * provider (`signInWith`, `signInWithSso`, and `handleRedirect` for what the return came to) and identities.
 */
export function useAuth() {
  const client = useIdentSphereClient();
  return useMemo(
    () => ({
      register: client.register.bind(client),
      login: client.login.bind(client),
      verifyMfa: client.verifyMfa.bind(client),
      enrollTotp: client.enrollTotp.bind(client),
      confirmTotp: client.confirmTotp.bind(client),
      signInWithPasskey: client.signInWithPasskey.bind(client),
      verifyMfaWithPasskey: client.verifyMfaWithPasskey.bind(client),
      registerPasskey: client.registerPasskey.bind(client),
      listPasskeys: client.listPasskeys.bind(client),
      renamePasskey: client.renamePasskey.bind(client),
      deletePasskey: client.deletePasskey.bind(client),
      signInWith: client.signInWith.bind(client),
      signInWithSso: client.signInWithSso.bind(client),
      handleRedirect: client.handleRedirect.bind(client),
      linkIdentity: client.linkIdentity.bind(client),
      listIdentities: client.listIdentities.bind(client),
      unlinkIdentity: client.unlinkIdentity.bind(client),
      refresh: client.refresh.bind(client),
      logout: client.logout.bind(client),
      getAccessToken: client.getAccessToken.bind(client),
    }),
    [client],
  );
}

/** Renders its children only when signed in. */
export function SignedIn({ children }: { children?: ReactNode }) {
  return useSession().status === "signed-in" ? <>{children}</> : null;
}

/** Renders its children only when known to be signed out (not while loading). */
export function SignedOut({ children }: { children?: ReactNode }) {
  return useSession().status === "signed-out" ? <>{children}</> : null;
}

export interface StepUpPromptProps {
  /** Verifies a second-factor code for the current session; rejects with an `IdentSphereError`. */
  verify: (code: string) => Promise<void>;
}

export interface RequireAal2Props {
  children?: ReactNode;
  /** Replaces the built-in code form. */
  prompt?: (props: StepUpPromptProps) => ReactNode;
}

/**
 * Renders its children only for an `aal2` session; for an `aal1` session it asks for a second-factor code
 * (step-up), and renders nothing when signed out.
 */
export function RequireAal2({ children, prompt }: RequireAal2Props) {
  const { status, session } = useSession();
  const client = useIdentSphereClient();
  if (status !== "signed-in" || !session) return null;
  if (session.aal === "aal2") return <>{children}</>;
  const verify = async (code: string) => {
    await client.verifyMfa({ code });
  };
  return prompt ? <>{prompt({ verify })}</> : <StepUpForm verify={verify} />;
}

function StepUpForm({ verify }: StepUpPromptProps) {
  const [code, setCode] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    verify(code).catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  };
  return (
    <form onSubmit={submit} aria-label="Verify it's you">
      <label>
        Authentication code
        <input value={code} onChange={(e) => setCode(e.target.value)} inputMode="numeric" autoComplete="one-time-code" />
      </label>
      <button type="submit">Verify</button>
      {error && <p role="alert">{error}</p>}
    </form>
  );
}
