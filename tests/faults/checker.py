"""The checker: reads a recorded run (history of invoke/complete operations, faults, replica downtime) and
checks IdentSphere's five guarantees over it. Prints one line per invariant with what it checked and what
it found, and exits 1 on any violation.

    python3 checker.py RUN.json

Times are the client's (seconds, one monotonic clock for the whole run): `t0` when a request was sent,
`t1` when its answer (or failure) came back. A guarantee is owed from the moment it was *acknowledged*
(the `t1` of the response that said it), to requests *sent* after that (`t0` later).
"""

import json
import sys
from collections import defaultdict

INVARIANTS = {
    1: "each refresh token has at most one successor",
    2: "nothing revoked is accepted after the revocation was acknowledged (any replica, the feed)",
    3: "acknowledged registrations and password changes hold",
    4: "only the catalog's answers; during faults 503 + Retry-After; no request unanswered",
    5: "the system heals within the bound after each fault, without a restart",
}


class Report:
    def __init__(self):
        self.checked = defaultdict(int)
        self.violations = defaultdict(list)

    def ok(self, inv, n=1):
        self.checked[inv] += n

    def bad(self, inv, what):
        self.checked[inv] += 1
        self.violations[inv].append(what)

    def summary(self):
        return {
            str(inv): {
                "name": INVARIANTS[inv],
                "checked": self.checked[inv],
                "violations": len(self.violations[inv]),
                "examples": self.violations[inv][:5],
            }
            for inv in INVARIANTS
        }


def successes(history, ops):
    return [h for h in history if h["op"] in ops and h.get("status") in (200, 201)]


def check_successors(history, report):
    """1: every 200 to a rotation of one presented refresh token names the same successor."""
    by_presented = defaultdict(set)
    for h in successes(history, ("refresh", "switch", "mfa_verify", "totp_confirm")):
        if h.get("presented") and h.get("succ"):
            by_presented[h["presented"]].add(h["succ"])
    for presented, succs in by_presented.items():
        if len(succs) > 1:
            report.bad(1, f"refresh token {presented} has {len(succs)} successors: {sorted(succs)}")
        else:
            report.ok(1)


def revocations(history, indeterminate=False):
    """Acknowledged revocations: (sid, acknowledged at). A global logout or a password change covers the
    families whose creation was acknowledged before it was sent. With `indeterminate`, also the ones whose
    answer was lost or a 5xx, from when they were sent: they may have taken effect (a refusal after them is
    right), though nothing may count on it (invariant 2 uses only the acknowledged ones)."""
    created = defaultdict(list)  # user -> [(t1, sid)]
    for h in history:
        if h["op"] in ("register", "login", "mfa_verify") and h.get("status") in (200, 201) and h.get("new_sid"):
            created[h["user"]].append((h["t1"], h["new_sid"]))
    revoked = {}

    def add(sid, at):
        if sid not in revoked or at < revoked[sid]:
            revoked[sid] = at

    for h in history:
        status = h.get("status")
        acknowledged = status == 204
        maybe = indeterminate and (status is None or status >= 500)
        at = h["t1"] if acknowledged else h["t0"]
        if h["op"] == "logout" and (acknowledged or maybe):
            if h["scope"] == "local":
                add(h["sid"], at)
            else:
                for t, sid in created[h["user"]]:
                    if t < h["t0"]:
                        add(sid, at)
        elif h["op"] == "password" and (acknowledged or maybe):
            for t, sid in created[h["user"]]:
                if t < h["t0"] and sid != h["sid"]:
                    add(sid, at)
        elif h["op"] in ("refresh", "switch") and status == 401 and h.get("code") == "refresh_token_reused":
            add(h["sid"], h["t1"])
    return revoked


def check_revocations(history, report, access_ttl, skew=0.0):
    """2: after a revocation is acknowledged, no request sent later is served with its tokens, on any
    replica; and the feed lists it to a resource server polling from its cursor or reading afresh."""
    revoked = revocations(history)
    for h in history:
        sid = h.get("sid")
        if sid is None or sid not in revoked or h["op"] in ("feed",):
            continue
        if h["t0"] <= revoked[sid]:
            continue
        if h.get("status") in (200, 201, 204):
            report.bad(2, f"op {h['i']} {h['op']} on replica {h.get('r')} accepted sid {sid} "
                          f"{h['t0'] - revoked[sid]:.3f}s after its revocation was acknowledged")
        else:
            report.ok(2)
    # The feed, as a resource server sees it (the SDKs keep what they read, by cursor, until it expires).
    known = set()
    margin = 2.0
    for h in sorted((h for h in history if h["op"] == "feed" and h.get("status") == 200), key=lambda h: h["t1"]):
        if h["fresh"]:
            seen = set(h["sids"])
        else:
            known |= set(h["sids"])
            seen = known
        for sid, at in revoked.items():
            # Owed while a token it covers may live on some replica's clock.
            if at < h["t0"] and h["t1"] < at + access_ttl + skew - margin:
                if sid in seen:
                    report.ok(2)
                else:
                    kind = "a fresh read" if h["fresh"] else "a reader with a cursor"
                    report.bad(2, f"feed read {h['i']} ({kind}, replica {h.get('r')}) lacks sid {sid} revoked "
                                  f"{h['t0'] - at:.3f}s before")


def check_durability(history, report):
    """3: each acknowledged registration signs in afterwards with its last acknowledged password, or with
    a change to it whose answer was lost (the change may or may not have happened)."""
    users = {}
    for h in sorted(history, key=lambda h: h["t0"]):
        if h["op"] == "register" and h.get("status") == 201:
            users[h["user"]] = {"known": h["password"], "known_at": h["t0"], "maybe": set()}
    for h in sorted(history, key=lambda h: h["t0"]):
        u = users.get(h.get("user"))
        if u is None or h["op"] != "password":
            continue
        if h.get("status") == 204:
            u["known"], u["known_at"], u["maybe"] = h["password"], h["t0"], set()
        elif h.get("status") is None or h.get("status", 0) >= 500:
            u["maybe"].add(h["password"])
    verified = defaultdict(set)
    for h in history:
        if h["op"] == "verify" and h.get("status") == 200:
            verified[h["user"]].add(h["password"])
    for user, u in users.items():
        if verified[user] & ({u["known"]} | u["maybe"]):
            report.ok(3)
        else:
            report.bad(3, f"user {user}: no sign-in with the acknowledged password after the run")


def down_during(downs, r, t0, t1, slack=1.0):
    return any(d["r"] == r and d["t0"] - slack <= t1 and t0 <= d["t1"] + slack for d in downs)


def revoked_by(revoked, h):
    """Whether a revocation of the op's family was acknowledged before its answer: then a refusal is right."""
    return h.get("sid") in revoked and revoked[h["sid"]] <= h["t1"]


def check_answers(history, report, catalog, downs, faults):
    """4: every answer is one the catalog lists for its route and status; a 5xx is only 503
    service_unavailable with Retry-After; no request goes unanswered unless its replica went down; and no
    operation the client had every reason to expect to succeed is refused (a lost session). A logout or
    password change that failed may have taken effect: a refusal after it was sent is no lost session."""
    revoked = revocations(history, indeterminate=True)
    for h in history:
        if h["op"] in ("canary",):
            continue
        status, r = h.get("status"), h.get("r")
        if status is None:
            if h.get("err") == "timeout" and not down_during(downs, r, h["t0"], h["t1"]):
                report.bad(4, f"op {h['i']} {h['op']} on replica {r}: no answer within the client timeout")
            elif h.get("err") != "timeout" and not down_during(downs, r, h["t0"], h["t1"]):
                report.bad(4, f"op {h['i']} {h['op']} on replica {r}: {h.get('err')} while the replica was up")
            else:
                report.ok(4)
            continue
        if status >= 500 and not (status == 503 and h.get("code") == "service_unavailable" and h.get("retry_after")):
            report.bad(4, f"op {h['i']} {h['op']} on replica {r}: {status} {h.get('code')} "
                          f"(Retry-After: {h.get('retry_after')})")
            continue
        if status >= 400:
            listed = catalog.get(f"{h['method']} {h['route']} {status}")
            if listed is None or h.get("code") not in listed:
                report.bad(4, f"op {h['i']} {h['op']}: {status} {h.get('code')} is not in the catalog of "
                              f"{h['method']} {h['route']}")
                continue
            if h.get("expect") == "ok" and status != 503 and not revoked_by(revoked, h):
                report.bad(4, f"op {h['i']} {h['op']} on replica {r}: {status} {h.get('code')} for a request "
                              "that should have succeeded")
                continue
        report.ok(4)


def check_recovery(history, report, faults, bound):
    """5: after each fault ends, every replica serves a canary round (refresh, then a session read) that
    was sent after the end, within `bound` seconds. Returns the recovery times."""
    canaries = sorted((h for h in history if h["op"] == "canary" and h.get("ok")), key=lambda h: h["t0"])
    replicas = sorted({h["r"] for h in history if h["op"] == "canary"})
    times = []
    for f in faults:
        end = f["t_end"]
        worst = 0.0
        for r in replicas:
            first = next((h for h in canaries if h["r"] == r and h["t0"] >= end), None)
            if first is None:
                worst = None
                break
            worst = max(worst, first["t1"] - end)
        if worst is None or worst > bound:
            report.bad(5, f"fault {f['kind']} (ended at {end:.1f}s): recovered "
                          f"{'never' if worst is None else f'after {worst:.1f}s'} (bound {bound}s)")
        else:
            report.ok(5)
        f["recovery_s"] = worst
        times.append(worst)
    return times


def check(run):
    report = Report()
    history, cfg = run["history"], run["config"]
    check_successors(history, report)
    check_revocations(history, report, cfg["access_ttl"], cfg.get("skew_ms", 0) / 1000)
    check_durability(history, report)
    check_answers(history, report, run["catalog"], run.get("downs", []), run.get("faults", []))
    times = check_recovery(history, report, run.get("faults", []), cfg["recovery_bound"])
    return report, times


def percentile(values, p):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    with open(sys.argv[1]) as f:
        run = json.load(f)
    report, times = check(run)
    failed = False
    for inv, s in report.summary().items():
        verdict = "OK  " if s["violations"] == 0 else "FAIL"
        failed |= s["violations"] > 0
        print(f"{verdict} {inv}. {s['name']}: {s['checked']} checked, {s['violations']} violations")
        for example in s["examples"]:
            print(f"       {example}")
    p50, worst = percentile(times, 50), percentile(times, 100)
    if p50 is not None:
        print(f"recovery after {len(times)} faults: p50 {p50:.2f}s, max {worst:.2f}s")
    print(json.dumps({"invariants": report.summary(), "recovery_p50_s": p50, "recovery_max_s": worst}),
          file=open(sys.argv[2], "w") if len(sys.argv) > 2 else sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
