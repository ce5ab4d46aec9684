"""The client workload: users who register, sign in (some with a second factor), refresh (some twice at once
through two replicas, some replaying a spent token within the grace window or stealing one after it), read
their session through any replica, switch organization, change password and log out (local and global);
a resource server following the revocation feed; canaries that show when the service heals. Every request
is recorded with its invoke and complete times (`Recorder`), and nothing here judges: `checker.py` does.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import random
import struct
import time
import uuid

import httpx


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def totp(secret, at):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


class Recorder:
    """Sends requests and records each as one history entry."""

    def __init__(self, urls, timeout, start):
        self.urls = urls
        self.start = start
        self.history = []
        self.in_flight = [0] * len(urls)
        self.client = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=200,
                                                                              max_keepalive_connections=50))

    def now(self):
        return time.monotonic() - self.start

    async def call(self, r, op, method, route, path=None, body=None, token=None, **fields):
        entry = {"i": len(self.history), "op": op, "r": r, "method": method, "route": route, **fields}
        self.history.append(entry)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.in_flight[r] += op in ("refresh", "switch")
        entry["t0"] = self.now()
        try:
            response = await self.client.request(method, self.urls[r] + (path or route), json=body, headers=headers)
            entry["t1"] = self.now()
            entry["status"] = response.status_code
            entry["retry_after"] = "retry-after" in response.headers
            try:
                data = response.json() if response.content else {}
            except ValueError:
                data = {}
            if response.status_code >= 400:
                entry["code"] = (data.get("error") or {}).get("code")
            return entry, data
        except httpx.TimeoutException:
            entry["t1"], entry["status"], entry["err"] = self.now(), None, "timeout"
        except httpx.HTTPError as e:
            entry["t1"], entry["status"], entry["err"] = self.now(), None, type(e).__name__
        finally:
            self.in_flight[r] -= op in ("refresh", "switch")
        return entry, {}


PASSWORD_WORDS = ["correct", "horse", "battery", "staple", "orbit", "lantern", "quartz", "meadow", "violet"]


def new_password():
    return "-".join(random.sample(PASSWORD_WORDS, 4)) + str(random.randint(10, 99))


class Session:
    """One family as this client knows it."""

    def __init__(self, data, uncertain=False):
        self.set(data)
        self.previous = None
        self.uncertain = uncertain

    def set(self, data):
        self.access, self.refresh = data["access_token"], data["refresh_token"]
        a, rt = claims(self.access), claims(self.refresh)
        self.sid, self.jti, self.rjti, self.exp = a["sid"], a["jti"], rt["jti"], a["exp"]
        self.org = a["org"]


class User:
    def __init__(self, w, n):
        self.w, self.rec = w, w.rec
        self.name = f"u{n}-{uuid.uuid4().hex[:8]}"
        self.email = f"{self.name}@example.com"
        self.password = new_password()
        self.sessions = []
        self.totp = None
        self.last_step = -1
        self.orgs = []
        self.registered = False
        self.wants_mfa = random.random() < w.mfa_share

    def replica(self):
        return random.randrange(len(self.rec.urls))

    def fresh(self, s):
        # Expect success only from a token well within its lifetime (replica clocks may be skewed).
        return "ok" if not s.uncertain and s.exp - time.time() > self.w.skew_margin else None

    async def register(self):
        entry, data = await self.rec.call(self.replica(), "register", "POST", "/v1/auth/register",
                                          body={"email": self.email, "password": self.password,
                                                "display_name": self.name},
                                          user=self.name, password=self.password)
        if entry["status"] == 201:
            self.registered = True
            s = Session(data)
            entry["new_sid"] = entry["sid"] = s.sid
            self.sessions.append(s)
        elif entry["status"] == 409:
            # An earlier attempt whose answer was lost created the account (the address is this client's
            # alone): sign in instead. Not acknowledged, so the checker does not hold the run to it.
            self.registered = True

    async def login(self):
        entry, data = await self.rec.call(self.replica(), "login", "POST", "/v1/auth/login",
                                          body={"email": self.email, "password": self.password},
                                          user=self.name, password=self.password)
        if entry["status"] != 200:
            return
        if data.get("mfa_required"):
            if self.totp is None:
                return  # a factor this client never saw confirmed: nothing to answer with
            step = int(time.time()) // 30
            if step <= self.last_step:
                return  # a code is accepted once per time step: try again in the next
            self.last_step = step
            entry, data = await self.rec.call(self.replica(), "mfa_verify", "POST", "/v1/auth/mfa/verify",
                                              body={"mfa_token": data["mfa_token"],
                                                    "code": totp(self.totp, time.time())},
                                              user=self.name)
            if entry["status"] != 200:
                return
        s = Session(data)
        entry["new_sid"] = entry["sid"] = s.sid
        self.sessions.append(s)

    async def refresh(self, s, r=None, organization=None):
        op = "switch" if organization else "refresh"
        body = {"refresh_token": s.refresh}
        if organization:
            body["organization"] = organization
        entry, data = await self.rec.call(self.replica() if r is None else r, op, "POST", "/v1/auth/refresh",
                                          body=body, user=self.name, sid=s.sid, presented=s.rjti,
                                          expect=self.fresh(s))
        return entry, data

    def took(self, s, entry, data):
        if entry["status"] == 200:
            entry["succ"] = claims(data["refresh_token"])["jti"]
            s.previous = (s.refresh, s.rjti, time.monotonic())
            s.set(data)
            s.uncertain = False
        elif entry["status"] is None or entry["status"] >= 500:
            s.uncertain = True  # the rotation may have happened: the token may be spent
        elif entry["status"] in (401, 403):
            self.sessions.remove(s) if s in self.sessions else None

    async def step(self):
        if not self.registered:
            await self.register()
            return
        if not self.sessions:
            await self.login()
            return
        s = random.choice(self.sessions)
        roll = random.random()
        if roll < 0.25:
            self.took(s, *await self.refresh(s))
        elif roll < 0.35:
            # The same token through two replicas at once: both must get the one successor.
            a, b = random.sample(range(len(self.rec.urls)), 2)
            pair = uuid.uuid4().hex[:8]
            (ea, da), (eb, db) = await asyncio.gather(self.refresh(s, a), self.refresh(s, b))
            ea["pair"] = eb["pair"] = pair
            if eb["status"] == 200:
                eb["succ"] = claims(db["refresh_token"])["jti"]
            if ea["status"] != 200 and eb["status"] == 200:
                ea, da = eb, db
            self.took(s, ea, da)
        elif roll < 0.42 and s.previous and time.monotonic() - s.previous[2] < self.w.grace - 3:
            # A tab that missed the answer replays the spent token within the grace window.
            token, jti, _ = s.previous
            entry, data = await self.rec.call(self.replica(), "refresh", "POST", "/v1/auth/refresh",
                                              body={"refresh_token": token}, user=self.name, sid=s.sid,
                                              presented=jti)
            if entry["status"] == 200:
                entry["succ"] = claims(data["refresh_token"])["jti"]
            elif entry["status"] in (401, 403) and s in self.sessions:
                self.sessions.remove(s)
        elif roll < 0.62:
            route = random.choice(["/v1/auth/session", "/v1/auth/sessions"])
            op = "session" if route == "/v1/auth/session" else "sessions"
            await self.rec.call(self.replica(), op, "GET", route, token=s.access, user=self.name, sid=s.sid,
                                expect=self.fresh(s))
        elif roll < 0.68:
            if not self.orgs:
                slug = f"o-{uuid.uuid4().hex[:10]}"
                entry, _ = await self.rec.call(self.replica(), "org_create", "POST", "/v1/organizations",
                                               body={"name": slug, "slug": slug}, token=s.access, user=self.name,
                                               sid=s.sid)
                if entry["status"] == 201:
                    self.orgs = [slug, s.org]
            else:
                target = random.choice(self.orgs)
                self.took(s, *await self.refresh(s, organization=target))
        elif roll < 0.76:
            await self.logout(s, "local")
            await self.login()
        elif roll < 0.80:
            await self.login()
            if len(self.sessions) > 1:
                await self.logout(random.choice(self.sessions), "global")
        elif roll < 0.83:
            await self.change_password(s)
        elif roll < 0.86 and self.totp is None and self.wants_mfa and s.exp - time.time() > 20:
            await self.enroll(s)
        elif roll < 0.90 and s.previous:
            # A thief replays a spent token after the grace window: the family ends.
            token, jti, at = s.previous
            if time.monotonic() - at > self.w.grace + 1:
                entry, _ = await self.rec.call(self.replica(), "refresh", "POST", "/v1/auth/refresh",
                                               body={"refresh_token": token}, user=self.name, sid=s.sid,
                                               presented=jti)
                if entry["status"] == 401 and s in self.sessions:
                    self.w.revoked.append((self.name, s))
                    self.sessions.remove(s)
        else:
            await self.probe_revoked()

    async def logout(self, s, scope):
        # A client retries a logout that failed with 503, as the SDKs do.
        for _ in range(3):
            entry, _ = await self.rec.call(self.replica(), "logout", "POST", "/v1/auth/logout",
                                           body={"scope": scope}, token=s.access, user=self.name, sid=s.sid,
                                           scope=scope)
            if entry["status"] == 204:
                ended = [s] if scope == "local" else list(self.sessions)
                for e in ended:
                    self.w.revoked.append((self.name, e))
                    if e in self.sessions:
                        self.sessions.remove(e)
                return
            # It may have ended them anyway.
            for e in [s] if scope == "local" else self.sessions:
                e.uncertain = True
            if entry["status"] not in (None, 503):
                return
            await asyncio.sleep(1)

    async def change_password(self, s):
        new = new_password()
        entry, _ = await self.rec.call(self.replica(), "password", "POST", "/v1/auth/password",
                                       body={"current_password": self.password, "new_password": new},
                                       token=s.access, user=self.name, sid=s.sid, password=new)
        if entry["status"] == 204:
            self.password = new
            for e in [e for e in self.sessions if e is not s]:
                self.w.revoked.append((self.name, e))
                self.sessions.remove(e)
        elif entry["status"] is None or entry["status"] >= 500:
            self.w.maybe_passwords.setdefault(self.name, []).append(new)
            for e in self.sessions:
                e.uncertain = e is not s or e.uncertain

    async def enroll(self, s):
        entry, data = await self.rec.call(self.replica(), "totp_enroll", "POST", "/v1/auth/mfa/totp",
                                          token=s.access, user=self.name, sid=s.sid)
        if entry["status"] != 200:
            return
        secret = data["secret"]
        step = int(time.time()) // 30
        entry, data = await self.rec.call(self.replica(), "totp_confirm", "POST", "/v1/auth/mfa/totp/confirm",
                                          body={"code": totp(secret, time.time()), "refresh_token": s.refresh},
                                          token=s.access, user=self.name, sid=s.sid, presented=s.rjti)
        if entry["status"] == 200:
            entry["succ"] = claims(data["refresh_token"])["jti"]
            self.totp, self.last_step = secret, step
            s.set(data)
        elif entry["status"] is None or entry["status"] >= 500:
            # The answer was lost: the factor may be confirmed. Keep its secret for the next sign-in (found by
            # the 30-minute run: a user loop died on a second factor it had no secret for).
            self.totp, self.last_step = secret, step

    async def probe_revoked(self):
        """Uses a revoked family's tokens again, on any replica: every one must be refused."""
        live = [(u, s) for u, s in self.w.revoked if s.exp - time.time() > -5]
        if not live:
            return
        user, s = random.choice(live)
        kind = random.random()
        if kind < 0.5:
            route = random.choice(["/v1/auth/session", "/v1/auth/sessions"])
            await self.rec.call(self.replica(), "session" if route.endswith("session") else "sessions", "GET",
                                route, token=s.access, user=user, sid=s.sid, probe=True)
        else:
            await self.rec.call(self.replica(), "refresh", "POST", "/v1/auth/refresh",
                                body={"refresh_token": s.refresh}, user=user, sid=s.sid, presented=s.rjti,
                                probe=True)


class Workload:
    def __init__(self, rec, users, grace, skew_margin, mfa_share, feed_key):
        self.rec = rec
        self.grace = grace
        self.skew_margin = skew_margin
        self.mfa_share = mfa_share
        self.feed_key = feed_key
        self.revoked = []
        self.maybe_passwords = {}
        self.users = [User(self, n) for n in range(users)]  # grows: user_loop signs new ones up
        self.stopping = False

    async def user_loop(self, user):
        while not self.stopping:
            if random.random() < 0.01:
                # Now and then a new person signs up: more registrations to hold afterwards.
                user = User(self, len(self.users))
                self.users.append(user)
            try:
                await user.step()
            except (KeyError, ValueError, IndexError):
                pass  # an answer without the fields a success has: recorded, the checker judges it
            await asyncio.sleep(random.uniform(0.02, 0.15))

    async def feed_loop(self):
        """A resource server on the revocation feed, as the SDKs poll it: from its cursor every second; and
        every tenth poll a new one reading it from the start."""
        cursor, n = None, 0
        while not self.stopping:
            n += 1
            fresh = n % 10 == 0
            r = random.randrange(len(self.rec.urls))
            after, sids, ok, entry = (None if fresh else cursor), [], True, None
            t0 = self.rec.now()
            while True:
                path = "/v1/revocations" + (f"?after={after}" if after else "")
                entry, data = await self.rec.call(r, "feed_page", "GET", "/v1/revocations", path=path,
                                                  token=self.feed_key)
                if entry["status"] != 200:
                    ok = False
                    break
                sids += [e["id"] for e in data["revocations"] if e["kind"] == "sid"]
                if not data["revocations"]:
                    break
                after = data["cursor"]
            if ok:
                self.rec.history.append({"i": len(self.rec.history), "op": "feed", "r": r, "fresh": fresh,
                                         "sids": sids, "t0": t0, "t1": self.rec.now(), "status": 200})
                if not fresh:
                    cursor = after
            await asyncio.sleep(1)

    async def canary_loop(self, r):
        """Per replica, every 250 ms: a refresh and a session read on a family of its own."""
        user = User(self, f"canary{r}")
        session = None
        while not self.stopping:
            t0 = self.rec.now()
            ok = False
            if session is None:
                entry, data = await self.rec.call(r, "canary_setup", "POST", "/v1/auth/register",
                                                  body={"email": user.email, "password": user.password})
                if entry["status"] == 201:
                    session = Session(data)
                elif entry["status"] == 409:
                    entry, data = await self.rec.call(r, "canary_setup", "POST", "/v1/auth/login",
                                                      body={"email": user.email, "password": user.password})
                    session = Session(data) if entry["status"] == 200 else None
            else:
                entry, data = await self.rec.call(r, "canary_refresh", "POST", "/v1/auth/refresh",
                                                  body={"refresh_token": session.refresh})
                if entry["status"] == 200:
                    session.set(data)
                    entry, _ = await self.rec.call(r, "canary_session", "GET", "/v1/auth/session",
                                                   token=session.access)
                    ok = entry["status"] == 200
                elif entry["status"] is not None and entry["status"] < 500:
                    session = None  # e.g. the token was spent by a rotation whose answer was lost
            self.rec.history.append({"i": len(self.rec.history), "op": "canary", "r": r, "ok": ok, "t0": t0,
                                     "t1": self.rec.now()})
            await asyncio.sleep(0.25)

    async def verify(self):
        """After the faults: every registered user signs in with what it last set (or a change whose answer
        was lost)."""
        for user in self.users:
            if not user.registered:
                continue
            for password in [user.password] + self.maybe_passwords.get(user.name, []):
                entry, _ = await self.rec.call(0, "verify", "POST", "/v1/auth/login",
                                               body={"email": user.email, "password": password},
                                               user=user.name, password=password)
                if entry["status"] == 200:
                    break
