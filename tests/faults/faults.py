"""The fault harness: private Postgres and Redis, TCP proxies, N replicas of the binary, the workload, the
faults, then the checker. Run through `scripts/faults.sh`, which passes the binary and a work directory it
removes on exit.

    python3 faults.py --binary PATH --work DIR --seconds 150 [--replicas 3] [--users 16] [--out DIR]

Owns everything it starts (its own Postgres cluster and Redis on free ports; the machine's shared ones are
never touched) and stops all of it when it ends, however it ends. Each child's pid goes to DIR/pids so the
shell's trap can stop them even if this process is killed.
"""

import argparse
import asyncio
import base64
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402
from workload import Recorder, Workload  # noqa: E402

PG_BIN = "/usr/lib/postgresql/15/bin"
PLATFORM_KEY = "faults-platform-key-0123456789abcdef0123"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """The stores, proxies and replicas of one run, and the faults that act on them."""

    def __init__(self, args):
        self.args = args
        self.work = args.work
        self.pg_port, self.redis_port = free_port(), free_port()
        self.pg_data = os.path.join(self.work, "pg")
        self.redis = None
        self.replicas = [None] * args.replicas
        self.ports = [free_port() for _ in range(args.replicas)]
        self.proxy_ports = [(free_port(), free_port()) for _ in range(args.replicas)]
        self.control = os.path.join(self.work, "proxy.json")
        self.offsets = [0] * args.replicas
        self.kek = base64.b64encode(os.urandom(32)).decode()
        self.children = []

    def remember(self, pid):
        with open(os.path.join(self.work, "pids"), "a") as f:
            f.write(f"{pid}\n")

    def as_postgres(self, cmd):
        # initdb and the server refuse to run as root.
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"] + cmd
        return cmd

    def pg_ctl(self, *action):
        cmd = self.as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.pg_data, "-l", os.path.join(self.work, "pg.log"),
                                "-w", "-t", "60"] + list(action))
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def start_postgres(self):
        os.makedirs(self.pg_data)
        if os.geteuid() == 0:
            shutil.chown(self.work, "postgres")
            shutil.chown(self.pg_data, "postgres")
        subprocess.run(self.as_postgres([f"{PG_BIN}/initdb", "-D", self.pg_data, "-U", "postgres", "-A", "trust",
                                         "-E", "UTF8", "--no-sync"]), check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(self.pg_data, "postgresql.conf"), "a") as f:
            f.write(f"port = {self.pg_port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.work}'\n"
                    "max_connections = 200\nshared_buffers = 64MB\n")
        self.pg_ctl("start")
        subprocess.run([f"{PG_BIN}/psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-q", "-c",
                        "CREATE DATABASE identsphere"], check=True)

    def start_redis(self):
        # No persistence at all: a restart loses everything, as the fault wants.
        self.redis = subprocess.Popen(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", self.work],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.remember(self.redis.pid)
        wait_port(self.redis_port)

    def start_proxies(self):
        with open(self.control, "w") as f:
            json.dump({}, f)
        specs = []
        for r, (pg, rd) in enumerate(self.proxy_ports):
            specs += [f"pg{r}={pg}:127.0.0.1:{self.pg_port}", f"redis{r}={rd}:127.0.0.1:{self.redis_port}"]
        proxy = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "proxy.py"),
                                  self.control] + specs, start_new_session=True)
        self.children.append(proxy)
        self.remember(proxy.pid)
        for pg, rd in self.proxy_ports:
            wait_port(pg)
            wait_port(rd)

    def set_proxy(self, settings):
        tmp = self.control + ".tmp"
        with open(tmp, "w") as f:
            json.dump(settings, f)
        os.replace(tmp, self.control)

    def start_replica(self, r):
        pg, rd = self.proxy_ports[r]
        env = {
            "PATH": os.environ.get("PATH", ""),
            "IDENTSPHERE_BIND": f"127.0.0.1:{self.ports[r]}",
            "IDENTSPHERE_PUBLIC_BASE_URL": "http://127.0.0.1:8080",
            "IDENTSPHERE_DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg}/identsphere",
            "IDENTSPHERE_DATABASE_POOL_SIZE": "8",
            "IDENTSPHERE_REDIS_URL": f"redis://127.0.0.1:{rd}",
            "IDENTSPHERE_KEY_ENCRYPTION_KEY": self.kek,
            "IDENTSPHERE_PLATFORM_API_KEY": PLATFORM_KEY,
            "IDENTSPHERE_ACCESS_TOKEN_TTL": str(self.args.access_ttl),
            "IDENTSPHERE_DATA_DIR": os.path.join(self.work, f"data{r}"),
            "IDENTSPHERE_WORKERS": "2",
            "IDENTSPHERE_ACTOR_ARBITERS": "2",
            "IDENTSPHERE_PASSWORD_HASH_CONCURRENCY": "1",
            # Cheaper hashes than production's: the harness is about faults, and the machine is shared.
            "IDENTSPHERE_ARGON2_MEMORY_KIB": "4096",
            "IDENTSPHERE_ARGON2_ITERATIONS": "1",
            "IDENTSPHERE_CLOCK_OFFSET_MS": str(self.offsets[r]),
            "IDENTSPHERE_SHUTDOWN_TIMEOUT": "10",
            "IDENTSPHERE_LOG": "warn",
            "IDENTSPHERE_LOG_FORMAT": "json",
        }
        for limit in ("SIGNIN_IP", "SIGNIN_ACCOUNT_FAILURES", "REGISTER_IP", "REFRESH_IP", "MFA_FAILURES"):
            env[f"IDENTSPHERE_RATE_LIMIT_{limit}"] = "off"
        log = open(os.path.join(self.work, f"replica{r}.log"), "a")
        self.replicas[r] = subprocess.Popen([self.args.binary], env=env, stdout=log, stderr=log,
                                            start_new_session=True)
        self.remember(self.replicas[r].pid)

    def stop_all(self):
        for p in self.replicas + self.children + [self.redis]:
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        if os.path.exists(os.path.join(self.pg_data, "postmaster.pid")):
            subprocess.run(self.as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.pg_data, "-m", "immediate", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def rss_kib(self):
        """Resident memory of each running replica process, by pid."""
        total = {}
        for p in self.replicas:
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    total[str(p.pid)] = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
            except (OSError, StopIteration, AttributeError):
                pass
        return total


def wait_port(port, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


async def ready(cluster, r, seconds=60):
    import httpx
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"http://127.0.0.1:{cluster.ports[r]}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"replica {r} did not become ready")


class Faults:
    """The fault schedule: one fault at a time, each followed by a quiet spell in which the system must heal."""

    KINDS = ["kill9", "graceful_restart", "pg_restart", "pg_stop", "redis_restart", "latency", "loss", "clock_skew"]

    def __init__(self, cluster, rec, workload):
        self.c, self.rec, self.w = cluster, rec, workload
        self.faults, self.downs = [], []

    def down(self, r, t0):
        self.downs.append({"r": r, "t0": t0, "t1": self.rec.now()})

    async def run_one(self, kind):
        c, now = self.c, self.rec.now
        # Replica 0 is never restarted (it suffers every store fault, latency and loss): its resident memory
        # over the whole run is the leak check.
        r = random.randrange(1, len(c.replicas)) if kind in ("kill9", "graceful_restart", "clock_skew") \
            else random.randrange(len(c.replicas))
        fault = {"kind": kind, "r": r, "t_start": now()}
        if kind == "kill9":
            # Mid-rotation: wait (up to 2 s) until a refresh is in flight on it.
            deadline = time.monotonic() + 2
            while self.rec.in_flight[r] == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            fault["refreshes_in_flight"] = self.rec.in_flight[r]
            t0 = now()
            c.replicas[r].send_signal(signal.SIGKILL)
            c.replicas[r].wait()
            await asyncio.sleep(1)
            c.start_replica(r)
            await ready(c, r)
            self.down(r, t0)
        elif kind in ("graceful_restart", "clock_skew"):
            t0 = now()
            c.replicas[r].send_signal(signal.SIGTERM)
            await asyncio.to_thread(c.replicas[r].wait)
            if kind == "clock_skew":
                c.offsets[r] = random.choice([-1, 1]) * self.c.args.skew_ms
                fault["offset_ms"] = c.offsets[r]
            c.start_replica(r)
            await ready(c, r)
            self.down(r, t0)
            if kind == "clock_skew":
                await asyncio.sleep(15)
                t0 = now()
                c.replicas[r].send_signal(signal.SIGTERM)
                await asyncio.to_thread(c.replicas[r].wait)
                c.offsets[r] = 0
                c.start_replica(r)
                await ready(c, r)
                self.down(r, t0)
        elif kind == "pg_restart":
            fault["r"] = None
            await asyncio.to_thread(c.pg_ctl, "-m", "fast", "restart")
        elif kind == "pg_stop":
            fault["r"] = None
            await asyncio.to_thread(c.pg_ctl, "-m", "fast", "stop")
            await asyncio.sleep(10)
            await asyncio.to_thread(c.pg_ctl, "start")
        elif kind == "redis_restart":
            fault["r"] = None
            c.redis.kill()
            c.redis.wait()
            c.start_redis()
        elif kind in ("latency", "loss"):
            setting = ({"delay_ms": 150, "jitter_ms": 100} if kind == "latency" else {"loss": 0.05, "delay_ms": 5})
            c.set_proxy({f"pg{r}": setting, f"redis{r}": setting})
            await asyncio.sleep(8)
            c.set_proxy({})
        fault["t_end"] = now()
        self.faults.append(fault)
        print(f"[{fault['t_end']:7.1f}s] fault {kind} (replica {fault['r']}) done", file=sys.stderr, flush=True)

    async def schedule(self, seconds, quiet):
        kinds = []
        while self.rec.now() < seconds - quiet - 12:
            if not kinds:
                # Every kind once a round, and the quick ones (a process or a store bounced) twice.
                kinds = self.KINDS + ["kill9", "graceful_restart", "pg_restart", "redis_restart"]
                random.shuffle(kinds)
            await self.run_one(kinds.pop())
            await asyncio.sleep(quiet)


def catalog_of(openapi):
    """`METHOD /route STATUS` -> the error codes the document lists for it."""
    out = {}
    for path, ops in openapi["paths"].items():
        for method, op in ops.items():
            for status, response in (op.get("responses") or {}).items():
                if "$ref" in response:
                    response = openapi["components"]["responses"][response["$ref"].split("/")[-1]]
                schema = ((response.get("content") or {}).get("application/json") or {}).get("schema") or {}
                codes = find_codes(schema, openapi)
                if codes:
                    out[f"{method.upper()} {path} {status}"] = sorted(codes)
    return out


def find_codes(schema, openapi, depth=0):
    if depth > 8 or not isinstance(schema, dict):
        return set()
    if "$ref" in schema:
        return find_codes(openapi["components"]["schemas"].get(schema["$ref"].split("/")[-1], {}), openapi, depth + 1)
    codes = set()
    code = (schema.get("properties") or {}).get("code")
    if isinstance(code, dict) and "enum" in code:
        codes |= set(code["enum"])
    for key in ("properties", "allOf", "oneOf", "anyOf"):
        value = schema.get(key)
        items = value.values() if isinstance(value, dict) else (value or [])
        for sub in items:
            codes |= find_codes(sub, openapi, depth + 1)
    return codes


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=int, default=150)
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--users", type=int, default=16)
    p.add_argument("--quiet", type=float, default=4.0, help="seconds between faults")
    p.add_argument("--access-ttl", type=int, default=60)
    p.add_argument("--skew-ms", type=int, default=3000)
    p.add_argument("--recovery-bound", type=float, default=15.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--rss-every", type=float, default=10.0, help="seconds between resident-memory samples")
    args = p.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    os.makedirs(args.out, exist_ok=True)
    cluster = Cluster(args)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: (cluster.stop_all(), os._exit(130)))
    started = time.monotonic()
    try:
        cluster.start_postgres()
        cluster.start_redis()
        cluster.start_proxies()
        cluster.start_replica(0)
        await ready(cluster, 0)
        for r in range(1, args.replicas):
            cluster.start_replica(r)
        for r in range(1, args.replicas):
            await ready(cluster, r)
        import httpx
        async with httpx.AsyncClient() as client:
            openapi = (await client.get(f"http://127.0.0.1:{cluster.ports[0]}/openapi.json")).json()
        rec = Recorder([f"http://127.0.0.1:{port}" for port in cluster.ports], timeout=30, start=time.monotonic())
        w = Workload(rec, args.users, grace=10, skew_margin=args.skew_ms / 1000 + 5, mfa_share=1 / 3,
                     feed_key=PLATFORM_KEY)
        faults = Faults(cluster, rec, w)
        tasks = [asyncio.create_task(w.user_loop(u)) for u in list(w.users)]
        tasks += [asyncio.create_task(w.feed_loop())] + [asyncio.create_task(w.canary_loop(r))
                                                         for r in range(args.replicas)]
        rss = []

        async def sample():
            # With replica 0's count of cached session views, so that growth can be told from a cache filling.
            async with httpx.AsyncClient(timeout=5) as client:
                while not w.stopping:
                    entry = {"t": rec.now(), "kib": cluster.rss_kib()}
                    try:
                        metrics = (await client.get(f"http://127.0.0.1:{cluster.ports[0]}/metrics")).text
                        entry["views_r0"] = next(int(float(line.split()[-1])) for line in metrics.splitlines()
                                                 if line.startswith("identsphere_session_views "))
                    except (httpx.HTTPError, StopIteration):
                        pass
                    rss.append(entry)
                    await asyncio.sleep(args.rss_every)

        tasks.append(asyncio.create_task(sample()))
        await asyncio.sleep(5)  # warm up before the first fault
        await faults.schedule(args.seconds, args.quiet)
        remaining = args.seconds - rec.now()
        await asyncio.sleep(max(remaining, 8))  # a quiet end: the last fault must heal too
        w.stopping = True
        await asyncio.wait(tasks, timeout=40)
        await w.verify()
        await rec.client.aclose()
        run = {
            "seed": seed,
            "config": {"access_ttl": args.access_ttl, "grace": 10, "recovery_bound": args.recovery_bound,
                       "replicas": args.replicas, "users": args.users, "seconds": args.seconds,
                       "skew_ms": args.skew_ms},
            "catalog": catalog_of(openapi),
            "history": rec.history,
            "faults": faults.faults,
            "downs": faults.downs,
            "rss": rss,
        }
    finally:
        cluster.stop_all()
    run_file = os.path.join(args.out, "run.json")
    report, times = checker.check(run)
    with open(run_file, "w") as f:
        json.dump(run, f)
    counts = {}
    for f in run["faults"]:
        counts[f["kind"]] = counts.get(f["kind"], 0) + 1
    requests = sum(1 for h in run["history"] if "method" in h)
    summary = {
        "seed": seed,
        "wall_seconds": round(time.monotonic() - started, 1),
        "requests": requests,
        "answered": sum(1 for h in run["history"] if "method" in h and h.get("status") is not None),
        "faults": counts,
        "invariants": report.summary(),
        "recovery_p50_s": checker.percentile(times, 50),
        "recovery_max_s": checker.percentile(times, 100),
        "rss": rss_growth(rss),
    }
    steady = str(cluster.replicas[0].pid)
    summary["rss"]["steady_replica_growth_pct"] = (summary["rss"]["processes"].get(steady) or {}).get("growth_pct")
    views = [sample["views_r0"] for sample in rss if "views_r0" in sample]
    if views:
        summary["rss"]["session_views_r0"] = {"from": views[len(views) // 2], "to": views[-1], "max": max(views)}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != "invariants"}))
    failed = False
    for inv, s in summary["invariants"].items():
        failed |= s["violations"] > 0
        print(f"{'OK  ' if s['violations'] == 0 else 'FAIL'} {inv}. {s['name']}: {s['checked']} checked, "
              f"{s['violations']} violations")
        for example in s["examples"]:
            print(f"       {example}")
    growth = summary["rss"]["steady_replica_growth_pct"]
    if args.seconds >= 600 and growth is not None:
        print(f"{'OK  ' if growth < 5 else 'FAIL'} resident memory of the replica never restarted: {growth:+.2f}% "
              "over the second half of the run (bound 5%)")
        failed |= growth >= 5
    sys.exit(1 if failed else 0)


def rss_growth(rss):
    """Resident memory of each replica process that lived through at least five samples (faults restart
    processes): from the sample halfway through its life (caches and pools fill during the first minutes, up
    to their bounds) to its last, and the largest growth among them."""
    by_pid = {}
    for sample in rss:
        for pid, kib in sample["kib"].items():
            by_pid.setdefault(pid, []).append((sample["t"], kib))
    grown = {}
    for pid, samples in by_pid.items():
        if len(samples) >= 5:
            (t0, first), (t1, last) = samples[len(samples) // 2], samples[-1]
            grown[pid] = {"start_kib": samples[0][1], "from_kib": first, "to_kib": last, "over_s": round(t1 - t0),
                          "growth_pct": round(100 * (last - first) / first, 2)}
    worst = max((g["growth_pct"] for g in grown.values()), default=None)
    return {"processes": grown, "max_growth_pct": worst}


if __name__ == "__main__":
    asyncio.run(main())
