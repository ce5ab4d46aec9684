import { act, cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { useEffect, useState } from "react";
import { afterEach, describe, expect, it } from "vitest";

import {
  IdentSphereClient,
  IdentSphereProvider,
  type IdentSphereError,
  RequireAal2,
  SignedIn,
  SignedOut,
  useAuth,
  useSession,
} from "../../src/index.js";
import { INFO, envelope, fakeFetch, json, tokenResponse } from "./fake-server.js";

afterEach(cleanup);

const AAL2 = { ...INFO, session: { ...INFO.session, aal: "aal2" as const } };

/** A server with no session until login; step-up with code 123456. */
function server() {
  let info: typeof INFO | null = null;
  return fakeFetch({
    "GET /v1/auth/session": () => (info ? json(200, info) : envelope(401, "token_missing")),
    "POST /v1/auth/refresh": () => envelope(401, "token_missing"),
    "POST /v1/auth/login": () => ((info = INFO), json(200, tokenResponse(INFO))),
    "POST /v1/auth/logout": () => ((info = null), json(204)),
    "POST /v1/auth/mfa/verify": (body) =>
      (body as { code: string }).code === "123456"
        ? ((info = AAL2), json(200, tokenResponse(AAL2)))
        : envelope(401, "mfa_invalid_code"),
  });
}

function Status() {
  const { status, user, organization } = useSession();
  return <p data-testid="status">{`${status} ${user?.email ?? "-"} ${organization?.slug ?? "-"}`}</p>;
}

function Buttons() {
  const auth = useAuth();
  return (
    <>
      <button onClick={() => void auth.login({ email: "ada@example.com", password: "pw" })}>log in</button>
      <button onClick={() => void auth.logout()}>log out</button>
    </>
  );
}

function app(client: IdentSphereClient) {
  return (
    <IdentSphereProvider client={client}>
      <Status />
      <Buttons />
      <SignedIn>
        <p>welcome</p>
        <RequireAal2>
          <p>secret settings</p>
        </RequireAal2>
      </SignedIn>
      <SignedOut>
        <p>please sign in</p>
      </SignedOut>
    </IdentSphereProvider>
  );
}

describe("IdentSphereProvider", () => {
  it("goes from loading to signed-out, then signs in and out", async () => {
    const client = new IdentSphereClient({ fetch: server(), syncTabs: false });
    render(app(client));
    expect(screen.getByTestId("status").textContent).toBe("loading - -");
    expect(screen.queryByText("please sign in")).toBeNull();

    await screen.findByText("please sign in");
    expect(screen.getByTestId("status").textContent).toBe("signed-out - -");

    fireEvent.click(screen.getByText("log in"));
    await screen.findByText("welcome");
    expect(screen.getByTestId("status").textContent).toBe("signed-in ada@example.com ada");
    expect(screen.queryByText("please sign in")).toBeNull();

    fireEvent.click(screen.getByText("log out"));
    await screen.findByText("please sign in");
    expect(screen.queryByText("welcome")).toBeNull();
  });

  it("RequireAal2 asks for a code, shows the error, then the content after step-up", async () => {
    const client = new IdentSphereClient({ fetch: server(), syncTabs: false });
    render(app(client));
    await screen.findByText("please sign in");
    fireEvent.click(screen.getByText("log in"));
    await screen.findByText("welcome");
    expect(screen.queryByText("secret settings")).toBeNull();

    const input = screen.getByLabelText("Authentication code");
    fireEvent.change(input, { target: { value: "000000" } });
    fireEvent.click(screen.getByText("Verify"));
    expect((await screen.findByRole("alert")).textContent).toBe("mfa_invalid_code (fake)");

    fireEvent.change(input, { target: { value: "123456" } });
    fireEvent.click(screen.getByText("Verify"));
    await screen.findByText("secret settings");
    expect(client.getState()).toMatchObject({ session: { aal: "aal2" } });
  });

  it("stops the client on unmount", async () => {
    const client = new IdentSphereClient({ fetch: server(), syncTabs: false });
    const { unmount } = render(app(client));
    await screen.findByText("please sign in");
    let stopped = false;
    const stop = client.stop.bind(client);
    client.stop = () => ((stopped = true), stop());
    act(() => unmount());
    await waitFor(() => expect(stopped).toBe(true));
  });
});

describe("useSession", () => {
  it("needs a provider", () => {
    const quiet = console.error;
    console.error = () => {};
    try {
      expect(() => render(<Status />)).toThrow(/no <IdentSphereProvider>/);
    } finally {
      console.error = quiet;
    }
  });
});

describe("sign-in through a provider", () => {
  /** A page that offers a provider and shows what the return came to, as the demo does. */
  function ProviderSignIn() {
    const { signInWith, handleRedirect } = useAuth();
    const [outcome, setOutcome] = useState("");
    useEffect(() => {
      handleRedirect().then(
        (result) => setOutcome(result?.status ?? "no return"),
        (e: IdentSphereError) => setOutcome(`error ${e.code}`),
      );
    }, [handleRedirect]);
    return (
      <>
        <button onClick={() => void signInWith("google")}>Sign in with Google</button>
        <p data-testid="outcome">{outcome}</p>
      </>
    );
  }

  it("useAuth's signInWith leaves for the provider, and the return's error reaches the page", async () => {
    sessionStorage.clear();
    window.history.replaceState(null, "", "/");
    const navigations: string[] = [];
    const navigate = (url: string) => void navigations.push(url);
    const first = new IdentSphereClient({ fetch: server(), syncTabs: false, navigate });
    const { unmount } = render(
      <IdentSphereProvider client={first}>
        <ProviderSignIn />
      </IdentSphereProvider>,
    );
    await waitFor(() => expect(screen.getByTestId("outcome").textContent).toBe("no return"));
    fireEvent.click(screen.getByText("Sign in with Google"));
    await waitFor(() => expect(navigations).toHaveLength(1));
    expect(navigations[0]).toBe("/v1/auth/oauth/google/authorize?redirect_uri=http%3A%2F%2Flocalhost%3A3000%2F");
    unmount();

    // The next page load: IdentSphere sent the browser back with an error.
    window.history.replaceState(null, "", "/?error=oauth_provider_error");
    const second = new IdentSphereClient({ fetch: server(), syncTabs: false, navigate });
    render(
      <IdentSphereProvider client={second}>
        <Status />
        <ProviderSignIn />
      </IdentSphereProvider>,
    );
    await waitFor(() => expect(screen.getByTestId("outcome").textContent).toBe("error oauth_provider_error"));
    await waitFor(() => expect(screen.getByTestId("status").textContent).toBe("signed-out - -"));
    expect(window.location.search).toBe("");
  });
});
