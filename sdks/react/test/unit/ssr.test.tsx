// @vitest-environment node
// Server-side rendering: no window, document or localStorage exist here. Importing the package and rendering
// must work, the result is the loading state, and nothing is fetched.
import { renderToString } from "react-dom/server";
import { expect, it } from "vitest";

import { IdentSphereClient, IdentSphereProvider, SignedIn, SignedOut, useSession } from "../../src/index.js";
import { fakeFetch } from "./fake-server.js";

function Status() {
  return <p>{useSession().status}</p>;
}

it("renders on the server as loading, without touching the network", () => {
  expect(typeof window).toBe("undefined");
  const fetch = fakeFetch({});
  const html = renderToString(
    <IdentSphereProvider client={new IdentSphereClient({ fetch })}>
      <Status />
      <SignedIn>in</SignedIn>
      <SignedOut>out</SignedOut>
    </IdentSphereProvider>,
  );
  expect(html).toBe("<p>loading</p>");
  expect(fetch.calls).toEqual([]);
});
