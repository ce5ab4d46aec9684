"""The checker must be able to fail: each test hands it a small history with one broken guarantee and expects
exactly that invariant to report it (and a clean history to pass)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402

CATALOG = {
    "POST /v1/auth/refresh 401": ["refresh_token_reused", "token_revoked"],
    "POST /v1/auth/refresh 503": ["service_unavailable"],
    "POST /v1/auth/logout 503": ["service_unavailable"],
    "GET /v1/auth/session 401": ["token_revoked"],
}


def op(i, name, t0, t1, status, **fields):
    method, route = {
        "register": ("POST", "/v1/auth/register"), "login": ("POST", "/v1/auth/login"),
        "refresh": ("POST", "/v1/auth/refresh"), "session": ("GET", "/v1/auth/session"),
        "logout": ("POST", "/v1/auth/logout"), "verify": ("POST", "/v1/auth/login"),
        "password": ("POST", "/v1/auth/password"),
    }[name]
    return {"i": i, "op": name, "t0": t0, "t1": t1, "status": status, "method": method, "route": route,
            "r": fields.pop("r", 0), "user": fields.pop("user", "ada"), **fields}


def clean():
    return [
        op(0, "register", 0.0, 0.1, 201, password="pw1", new_sid="s1", sid="s1"),
        op(1, "refresh", 1.0, 1.1, 200, sid="s1", presented="r1", succ="r2"),
        op(2, "refresh", 1.0, 1.2, 200, sid="s1", presented="r1", succ="r2", r=1),
        op(3, "session", 2.0, 2.1, 200, sid="s1"),
        op(4, "logout", 3.0, 3.1, 204, sid="s1", scope="local"),
        op(5, "session", 3.2, 3.3, 401, sid="s1", code="token_revoked", r=2),
        op(6, "verify", 9.0, 9.1, 200, password="pw1"),
        {"i": 7, "op": "canary", "r": 0, "ok": True, "t0": 5.0, "t1": 5.1},
    ]


def run(history, faults=()):
    return {"history": history, "config": {"access_ttl": 60, "recovery_bound": 10}, "catalog": CATALOG,
            "faults": list(faults), "downs": []}


def violations(history, faults=()):
    report, _ = checker.check(run(history, faults))
    return {int(k): v["violations"] for k, v in report.summary().items() if v["violations"]}


class CheckerTest(unittest.TestCase):
    def test_a_clean_history_passes(self):
        self.assertEqual(violations(clean()), {})

    def test_a_double_successor_is_caught(self):
        h = clean()
        h[2]["succ"] = "r3"
        self.assertEqual(violations(h), {1: 1})

    def test_a_token_accepted_after_its_logout_was_acknowledged_is_caught(self):
        h = clean()
        h[5].update(status=200, code=None)
        self.assertEqual(violations(h), {2: 1})

    def test_a_request_sent_before_the_logout_was_acknowledged_may_still_succeed(self):
        h = clean()
        h[5].update(status=200, code=None, t0=3.05)
        self.assertEqual(violations(h), {})

    def test_a_refusal_after_a_failed_logout_is_no_lost_session_but_one_without_any_is(self):
        h = clean()[:3] + [
            op(40, "logout", 2.0, 2.1, 503, sid="s1", scope="global", code="service_unavailable", retry_after=True),
            op(41, "session", 2.2, 2.3, 401, sid="s1", code="token_revoked", expect="ok"),
            op(42, "verify", 9.0, 9.1, 200, password="pw1"),
        ]
        self.assertEqual(violations(h), {})
        h[2:4] = []
        self.assertEqual(violations(h), {4: 1})

    def test_a_global_logout_covers_the_users_other_sessions(self):
        h = clean()[:4] + [
            op(10, "login", 2.0, 2.1, 200, password="pw1", new_sid="s2", sid="s2"),
            op(11, "logout", 3.0, 3.1, 204, sid="s2", scope="global"),
            op(12, "refresh", 4.0, 4.1, 200, sid="s1", presented="r2", succ="r4", r=1),
            op(13, "verify", 9.0, 9.1, 200, password="pw1"),
        ]
        self.assertEqual(violations(h), {2: 1})

    def test_a_feed_that_forgot_a_revocation_is_caught(self):
        h = clean() + [{"i": 20, "op": "feed", "r": 1, "fresh": True, "sids": [], "t0": 4.0, "t1": 4.1,
                        "status": 200}]
        self.assertEqual(violations(h), {2: 1})

    def test_a_lost_password_change_is_caught(self):
        h = clean()
        h.insert(6, op(30, "password", 4.0, 4.1, 204, sid="s9", password="pw2"))
        self.assertEqual(violations(h), {3: 1})

    def test_an_answer_outside_the_catalog_or_a_bare_5xx_is_caught(self):
        h = clean()
        h[5].update(status=500, code="internal")
        self.assertEqual(violations(h), {4: 1})
        h = clean()
        h[5].update(status=503, code="service_unavailable", retry_after=False)
        self.assertEqual(violations(h), {4: 1})
        h = clean()
        h[5].update(code="token_expired")
        self.assertEqual(violations(h), {4: 1})

    def test_a_request_unanswered_while_its_replica_was_up_is_caught(self):
        h = clean()
        h[3].update(status=None, err="timeout")
        self.assertEqual(violations(h), {4: 1})

    def test_a_fault_the_system_does_not_heal_from_is_caught(self):
        self.assertEqual(violations(clean(), [{"kind": "pg_stop", "t_end": 6.0}]), {5: 1})
        self.assertEqual(violations(clean(), [{"kind": "pg_stop", "t_end": 4.0}]), {})


if __name__ == "__main__":
    unittest.main()
