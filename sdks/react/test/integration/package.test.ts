// The package as npm would publish it (`npm pack` of the build): both entry points import in plain Node
// (no window: SSR-safe), with their types beside them, and nothing but React is needed at run time.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { afterAll, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
const consumer = mkdtempSync(join(tmpdir(), "identsphere-react-consumer-"));
afterAll(() => rmSync(consumer, { recursive: true, force: true }));

it("packs into an ESM package with types whose only runtime need is React", () => {
  const [packed] = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", consumer], { cwd: root, encoding: "utf8" }));
  const files: string[] = packed.files.map((f: { path: string }) => f.path);
  for (const entry of ["dist/index.js", "dist/index.d.ts", "dist/client/index.js", "dist/client/index.d.ts"]) {
    expect(files).toContain(entry);
  }
  expect(files.some((f) => f.startsWith("src/") || f.startsWith("test/"))).toBe(false);

  const installed = join(consumer, "node_modules/@identsphere/react");
  mkdirSync(installed, { recursive: true });
  execFileSync("tar", ["-xzf", join(consumer, packed.filename), "-C", installed, "--strip-components=1"]);
  const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"));
  expect(manifest.dependencies).toBeUndefined();
  expect(Object.keys(manifest.peerDependencies)).toEqual(["react"]);
  // React is the one thing the consumer brings.
  symlinkSync(join(root, "node_modules/react"), join(consumer, "node_modules/react"));

  const exported = execFileSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `const client = await import("@identsphere/react/client");
       const react = await import("@identsphere/react");
       console.log(JSON.stringify({ client: Object.keys(client), react: Object.keys(react), window: typeof window }));`,
    ],
    { cwd: consumer, encoding: "utf8" },
  );
  const names = JSON.parse(exported);
  expect(names.window).toBe("undefined");
  expect(names.client).toEqual(expect.arrayContaining(["IdentSphereClient", "IdentSphereError"]));
  expect(names.react).toEqual(
    expect.arrayContaining(["IdentSphereProvider", "useSession", "useAuth", "SignedIn", "SignedOut", "RequireAal2", "IdentSphereClient"]),
  );
});
