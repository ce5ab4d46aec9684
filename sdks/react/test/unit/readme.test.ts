// @vitest-environment node
// The README's sign-in page is the demo's file, which the end-to-end test drives: they must not drift.
import { readFileSync } from "node:fs";

import { expect, it } from "vitest";

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

it("the README shows examples/demo/sign-in-page.tsx as it is, in under 30 lines", () => {
  const page = read("examples/demo/sign-in-page.tsx");
  expect(read("README.md")).toContain("```tsx\n" + page + "```");
  expect(page.trimEnd().split("\n").length).toBeLessThan(30);
});
