// Starts a throwaway IdentSphere for the integration tests, the end-to-end test and the demo: the release
// binary from cargo's target directory (built first if missing), on a free port, with its own data
// directory, the abuse limits off (tests sign in far more often than a person), stopped with stop().
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** The binary: $IDENTSPHERE_BIN, else cargo's release build (CARGO_TARGET_DIR, as CI sets it). */
export function identsphereBinary({ build = true } = {}) {
  if (process.env.IDENTSPHERE_BIN) return process.env.IDENTSPHERE_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(homedir(), ".cache/identsphere/target");
  const binary = join(target, "release/identsphere");
  if (!existsSync(binary) && build) {
    console.error(`identsphere: ${binary} is missing, building it (cargo build --release)`);
    const built = spawnSync("cargo", ["build", "--release", "--bin", "identsphere"], {
      cwd: repo,
      stdio: "inherit",
      env: { ...process.env, CARGO_TARGET_DIR: target },
    });
    if (built.status !== 0) throw new Error("identsphere: cargo build failed");
  }
  return binary;
}

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * Starts IdentSphere; `env` adds or overrides variables (IDENTSPHERE_ACCESS_TOKEN_TTL,
 * IDENTSPHERE_ALLOWED_ORIGINS, a sign-in provider's IDENTSPHERE_OAUTH_<NAME>_*, …). With `platformKey`, first
 * mints a platform API key with `identsphere admin create-key` on the data directory (the embedded store
 * refuses the command while a server holds it), returned as `platformKey`. `port` (default a free one) is
 * for a caller whose `env` names it, such as an IDENTSPHERE_PUBLIC_BASE_URL. Resolves once /readyz answers 200.
 */
export async function startIdentSphere(env = {}, { platformKey: withPlatformKey = false, port: chosenPort } = {}) {
  const port = chosenPort ?? (await freePort());
  const baseUrl = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(join(tmpdir(), "identsphere-sdk-react-"));
  const serverEnv = {
    ...process.env,
    IDENTSPHERE_BIND: `127.0.0.1:${port}`,
    IDENTSPHERE_DATA_DIR: dataDir,
    IDENTSPHERE_LOG: "warn",
    IDENTSPHERE_RATE_LIMIT_SIGNIN_IP: "off",
    IDENTSPHERE_RATE_LIMIT_SIGNIN_ACCOUNT_FAILURES: "off",
    IDENTSPHERE_RATE_LIMIT_REGISTER_IP: "off",
    IDENTSPHERE_RATE_LIMIT_REFRESH_IP: "off",
    IDENTSPHERE_RATE_LIMIT_MFA_FAILURES: "off",
    ...env,
  };
  let platformKey;
  if (withPlatformKey) {
    const minted = spawnSync(identsphereBinary(), ["admin", "create-key", "--name", "e2e"], {
      env: serverEnv,
      encoding: "utf8",
    });
    platformKey = minted.stdout.trim();
    if (minted.status !== 0 || !platformKey.startsWith("isp_")) {
      rmSync(dataDir, { recursive: true, force: true });
      throw new Error(`identsphere admin create-key failed (${minted.status}):\n${minted.stderr}`);
    }
  }
  const child = spawn(identsphereBinary(), [], { stdio: ["ignore", "ignore", "pipe"], env: serverEnv });
  let log = "";
  child.stderr.on("data", (chunk) => (log = (log + chunk).slice(-4000)));
  const exited = new Promise((resolveExit) => child.once("exit", resolveExit));
  const stop = async () => {
    if (child.exitCode === null) child.kill("SIGTERM");
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  };
  for (const started = Date.now(); Date.now() - started < 30_000; ) {
    if (child.exitCode !== null) break;
    const ready = await fetch(`${baseUrl}/readyz`).then((r) => r.ok, () => false);
    if (ready) return { baseUrl, port, platformKey, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`identsphere did not become ready on ${baseUrl}:\n${log}`);
}

/** The value of one Prometheus counter line of GET /metrics (0 if absent). */
export async function metric(baseUrl, name, labels) {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const labelText = line.slice(name.length + 1, line.indexOf("}"));
    if (wanted.every((pair) => labelText.split(",").includes(pair))) total += Number(line.split(" ").pop());
  }
  return total;
}
