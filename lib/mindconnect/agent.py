"""The MindConnect agent: onboard, token, rotate and recover; data model and mappings; exchange.

    agent = Agent(store_dir, connect, onboarding_key=key_json, clock=Clock(...))
    agent.sync_model(items.DataModel(description), mappings)   # PUT only when the model changed
    report = agent.exchange(items=[...], timeseries=spool_or_readings, events=event_spool)

Everything that varies is injected (clock, random source, connect/HTTP factory, checkpoint hook), so
tests and a simulated year can drive it. The agent never sleeps for long on its own: when the hub
says "later" (429, 5xx, network failure) the report carries retry_at_ms and the caller decides.

State (agent.state): NEW (no identity yet), READY, NEEDS_KEY (every stored credential was refused;
only a new onboarding key helps; nothing is sent until one is given).
"""

import gc
import sys

from mindconnect import credentials, items, multipart
from mindconnect.clock import Clock
from mindconnect.compat import const, unload, urandom
from mindconnect.errors import (
    AuthError,
    ConfigError,
    MindConnectError,
    OnboardingRequired,
    Rejected,
    msg,
)

NEW = "new"
READY = "ready"
NEEDS_KEY = "needs_key"

SENT = "sent"
RETRY = "retry"
REJECTED = "rejected"

_BODY_LIMIT = const(10485760)
_ROTATE_BEFORE_S = const(90000)  # 25 h
_TOKEN_MARGIN_S = const(300)
_BACKOFF_FIRST_MS = const(2000)
_BACKOFF_MAX_MS = const(3600000)

_EXCHANGE = "/api/mindconnect/v3/exchange"
# The wording of its errors, one line each, taken by msg(_W, line): one str constant, not one per message
# (in ROM form each str constant over 10 characters is an object of about 40 B in the heap; docs/AGENT.md).
# Line 0 ends the errors of onboard and renew that need a new onboarding key.
_W = ("get a new onboarding key from Insights Hub > Agent > Onboard and provision it\n"  # 0
      "the gateway URL must start with https:// (got %s)\n"
      "<Outcome %s items=%d readings=%d events=%d %s>\n"
      "readings need the data model: call sync_model() first\n"
      "time series need the data model: call sync_model() first\n"
      "an item of %d bytes can never fit the %d-byte body limit: make it smaller\n"  # 5
      "backing off\n"
      "/api/agentmanagement/v3/oauth/token_key\n"
      "a request of %d bytes was refused as too large: at most %d from now on\n"  # 8
      "access token not saved (%r): kept in RAM")


def split_url(url):
    """(host, port, path) of an https URL."""
    if not url.startswith("https://"):
        raise ConfigError(msg(_W, 1) % url)
    rest = url[8:]
    cut = rest.find("/")
    hostport, path = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
    host, port = hostport, 443
    if ":" in hostport:
        host, p = hostport.rsplit(":", 1)
        port = int(p)
    return host, port, path


class Outcome:
    """What happened to one request's worth of items: status SENT, RETRY or REJECTED.

    .items (the caller's items in it), .readings and .events (counts from sources), .reason,
    .retry_at_ms (RETRY: not before this time, by the agent's clock).
    """

    def __init__(self, status, items_=(), readings=0, events=0, reason=None, retry_at_ms=None):
        self.status = status
        self.items = items_
        self.readings = readings
        self.events = events
        self.reason = reason
        self.retry_at_ms = retry_at_ms

    def __repr__(self):
        return msg(_W, 2) % (
            self.status, len(self.items), self.readings, self.events, self.reason or "")


class Report:
    """The outcomes of one exchange() call, plus readings set aside as invalid before sending."""

    def __init__(self):
        self.outcomes = []
        self.invalid = 0
        self.requests = 0

    def add(self, outcome):
        self.outcomes.append(outcome)

    def count(self, status, what="readings"):
        return sum(getattr(o, what) if what != "items" else len(o.items)
                   for o in self.outcomes if o.status == status)

    @property
    def retry_at_ms(self):
        for o in self.outcomes:
            if o.status == RETRY:
                return o.retry_at_ms
        return None

    @property
    def rejected(self):
        return [o for o in self.outcomes if o.status == REJECTED]


class _Source:
    """A batch source (spool or staged readings) with the item kind it feeds."""

    fixed = False  # staged readings: a batch cannot be given again smaller

    def __init__(self, kind, source, make):
        self.kind = kind
        self.source = source
        self.make = make
        self.framing = make(multipart.BytesSource(b"")).wire_length()


class Agent:
    def __init__(self, store, connect=None, onboarding_key=None, clock=None, rand=None, http_factory=None,
                 checkpoint=None, log=None, body_limit=_BODY_LIMIT, rotate_before_s=_ROTATE_BEFORE_S,
                 timeout_ms=30000):
        self.store = credentials.CredentialStore(store) if isinstance(store, str) else store
        self.connect = connect
        self.key = onboarding_key
        self.clock = clock or Clock()
        self.rand = rand or urandom
        self.http_factory = http_factory
        self.checkpoint = checkpoint
        self.log = log
        self.body_limit = body_limit
        self.rotate_before_s = rotate_before_s
        self.timeout_ms = timeout_ms
        self.model = None
        self._aside = None
        self.failures = 0
        self.retry_at_ms = None
        self.requests = 0
        self.rotations = 0
        self._http = None
        self._bearer = None  # b"Bearer <access token>": the Authorization header's value
        self._token_until = 0  # self._bearer is good until then (seconds, agent clock); 0: look on flash
        self._secret_exp = 0  # expiry of the secret the token was issued for

    @property
    def aside(self):
        """The items.AsideLog of this agent's store (made when first needed: rarely)."""
        if self._aside is None:
            self._aside = items.AsideLog(self.store.folder + "/aside.log")
        return self._aside

    # -- plumbing ------------------------------------------------------------------------------------

    def _mark(self, name):
        if self.checkpoint:
            self.checkpoint(name)

    def _warn(self, msg):
        if self.log:
            self.log(msg)

    def _base_url(self):
        ident = self.store.current()
        return ident.base_url if ident else self._run("onboard", "base_url")

    def _run(self, name, fn, *args):
        """fn(self, *args) from the on-demand module mindconnect.<name>, which is dropped afterwards
        (from sys.modules and the package) so its code leaves the heap until it is needed again."""
        # jwt: only renew signs; rsa: only RSA_3072 agents load it (onboard, renew); model: dsc's mappings
        drop = tuple(n for n in (name, "jwt", "rsa", "model") if n == name or "mindconnect." + n not in sys.modules)
        mod = __import__("mindconnect." + name, None, None, (fn,))
        fn = getattr(mod, fn)
        mod = None
        try:
            return fn(self, *args)
        finally:
            fn = None
            unload(*drop)

    def _client(self):
        if self._http is None:
            host, port, _ = split_url(self._base_url())
            if self.http_factory:
                self._http = self.http_factory(host, port)
            else:
                from mindconnect.http import HTTPClient
                gc.collect()  # its 2 KB of buffers live as long as the agent: to the lowest free room
                self._http = HTTPClient(self.connect, host, port, timeout_ms=self.timeout_ms)
        return self._http

    def close(self):
        if self._http is not None and hasattr(self._http, "close"):
            self._http.close()
        self._http = None

    def gateway_time_ms(self):
        """The gateway's time from the Date of one GET of its public token key (no credential is sent;
        1 s resolution), for a board whose clock NTP cannot set; None if the answer had no Date."""
        from mindconnect.clock import parse_http_date
        date = self._call("GET", msg(_W, 7)).headers.get("date")
        try:
            return parse_http_date(date) * 1000 if date else None
        except ValueError:
            return None

    def _call(self, method, path, headers=None, body=None, resend=True):
        r = self._client().request(method, path, headers=headers, body=body, resend=resend)
        self.requests += 1
        self.clock.observe_headers(r.headers)
        return r

    def _failure(self, r, what):
        """The error for an unexpected status (status codes are not exceptions in http.py); the code
        that words it is in mindconnect.failure, loaded for it and dropped."""
        return self._run("failure", "error_for", r, what)

    @property
    def state(self):
        if self.store.needs_key() is not None:
            return NEEDS_KEY
        return READY if self.store.current() else NEW

    # -- onboarding, tokens, data model (the rarely needed code lives in onboard, renew and dsc) ------

    def onboard(self):
        """Register with the onboarding key once; True if it registered now, False if already onboarded."""
        self._token_until = 0
        return self._run("onboard", "onboard")

    def _identities(self):
        if self.store.needs_key() is not None or not self.store.current():
            self.onboard()
        return self.store.identities()

    def authorize(self, force=False):
        """A valid access token: from flash when it has 5 minutes left, else a new one.

        Rotates the secret when it nears expiry; when the secret is refused, falls back to the
        previous identity, then to rotation with any stored registration access token; when all
        fail, enters NEEDS_KEY (persisted) and raises OnboardingRequired. Once found, the token and
        the time it must be replaced by are kept in RAM: later requests read no credential file.
        """
        return self._bearer_for(force)[7:].decode()

    def _bearer_for(self, force=False):
        """authorize() as the Authorization header's value, b"Bearer <token>": kept, never copied per
        request (the token is about 1 KB)."""
        now = self.clock.now()
        if not force and now < self._token_until and now < self._secret_exp - self.rotate_before_s:
            return self._bearer
        self._token_until = 0
        self._bearer = None  # its 1 KB is free for what finds the next token
        ids = self._identities()
        due = self._rotate_at(ids[0]) <= self.clock.now() and self.clock.is_set()
        got = None
        if not (due or force or self.store.has_previous()):  # with a fallback kept, confirm the new secret
            got = self.store.token(ids[0].client_id)
            if got and self.clock.now() < got[1] - _TOKEN_MARGIN_S:
                got = got + (ids[0].client_secret_expires_at,)
            else:
                got = None
        if got is None:
            got = self._run("renew", "authorize", ids, due)
        ids = None
        self._keep(got)
        return self._bearer

    def _keep(self, got):
        """Keep a token in RAM: got = (token, its expiry, the secret's expiry), seconds. Made after the
        on-demand module that got it was dropped (after a collection: it lands low); kept as the header
        value it is sent as, b"Bearer <token>" (renew hands over a memoryview of that in its answer's
        body, the store the token as str)."""
        # rotate_before_s is read at each check (a caller may change it), the secret's expiry is kept
        self._bearer = None
        self._token_until = got[1] - _TOKEN_MARGIN_S
        self._secret_exp = got[2] or 1 << 62
        t = got[0]
        self._bearer = b"Bearer " + t.encode() if isinstance(t, str) else bytes(t)

    def _rotate_at(self, ident):
        """When ident's secret is due for rotation (seconds; far future when it does not expire)."""
        exp = ident.client_secret_expires_at
        return exp - self.rotate_before_s if exp else 1 << 62

    def _authed(self, method, path, headers=None, body=None):
        """A request with the access token; on 401 a new token and one retry."""
        h = dict(headers or {})
        h["Authorization"] = self._bearer_for()
        r = self._call(method, path, h, body)
        if r.status == 401:
            self.store.drop_token()
            h["Authorization"] = None
            h["Authorization"] = self._bearer_for(True)
            r = self._call(method, path, h, body)
        return r

    def sync_model(self, model, mappings=(), via_exchange=False):
        """Send the data model when its hash differs from the last one sent, then (re)assert mappings.

        Returns True when anything was sent. A mapping conflict raises Rejected naming both sides.
        """
        self.model = model
        cid = self._identities()[0].client_id
        state = self.store.read(credentials.MODEL) or {}
        maps = None
        if mappings:
            loaded = "mindconnect.model" in sys.modules
            maps = items.mappings_hash(cid, mappings)
            if not loaded:
                unload("model")  # dsc loads it again when the mappings must be sent
        if state.get("dsc") == model.hash and maps in (None, state.get("maps")) and \
                0 <= self.clock.now() - state.get("at", 0) < 86400:  # the hub looked at within a day
            return False
        self._bearer_for()  # the token first: renew and dsc are never in the heap together
        return self._run("dsc", "sync_model", model, mappings, via_exchange)

    # -- exchange ------------------------------------------------------------------------------------

    def _backoff(self, err):
        """Schedule the next attempt: Retry-After when given, else exponential; plus up to 25% jitter."""
        self.failures += 1
        ra = getattr(err, "retry_after", None)
        if ra is not None:
            delay = ra * 1000
        else:
            delay = min(_BACKOFF_MAX_MS, _BACKOFF_FIRST_MS << min(self.failures - 1, 20))
        delay += delay * self.rand(1)[0] // 1024
        self.retry_at_ms = self.clock.now_ms() + delay
        return self.retry_at_ms

    def _sources(self, timeseries, events):
        out = []
        if timeseries is not None:
            staged = not hasattr(timeseries, "batch")
            if staged:
                if self.model is None:
                    raise ConfigError(msg(_W, 3))
                timeseries = items.ReadingStage(self.store.folder + "/stage", items.RecordEncoder(self.model),
                                                timeseries, self.aside)
            cid = self.model.config_id if self.model else None
            if cid is None:
                raise ConfigError(msg(_W, 4))
            out.append(_Source("readings", timeseries, lambda s: items.timeseries_item(cid, s)))
            if staged:
                out[0].fixed = True
        if events is not None:
            out.append(_Source("events", events, items.event_item))
        return out

    def exchange(self, items_=(), timeseries=None, events=None):
        """Send items and drain the sources, as many requests as the body limit needs; returns a Report.

        items_: multipart.Item objects (items.event_item, file_item, custom_item, dsc_item...).
        timeseries: a spool (.batch/.ack) or an iterable of readings (checked against the model; invalid
        ones go to the aside log). events: an event spool. An item that can never fit the body limit
        raises ConfigError before anything is sent.
        """
        report = Report()
        limit = self.body_limit - multipart.BODY_OVERHEAD
        pending = []
        for it in items_:
            try:
                if hasattr(it.source, "stat"):
                    it.source.stat()  # a file queued earlier: its size now (or it is gone)
                pending.append(it)
            except ConfigError as e:
                report.add(Outcome(REJECTED, [it], reason=e.message))
        for it in pending:
            if it.wire_length() > limit:
                raise ConfigError(msg(_W, 5) % (it.wire_length(), self.body_limit))
        if self.retry_at_ms is not None and self.clock.now_ms() < self.retry_at_ms:
            report.add(Outcome(RETRY, pending, reason=msg(_W, 6), retry_at_ms=self.retry_at_ms))
            return report
        sources = self._sources(timeseries, events)
        try:
            self._drain(report, limit, pending, sources)
        finally:
            for s in sources:
                report.invalid += getattr(s.source, "invalid", 0)
        return report

    def _drain(self, report, limit, pending, sources):
        alone = False  # after a mixed request was refused: one item or batch per request, to find the culprit
        while True:
            room = limit
            batch_items = []
            while pending and pending[0].wire_length() <= room and not (alone and batch_items):
                room -= pending[0].wire_length()
                batch_items.append(pending.pop(0))
            mine = batch_items[:]
            taken = []
            for s in sources:
                if room > s.framing and not (alone and batch_items):
                    try:
                        b = s.source.batch(room - s.framing)
                    except ConfigError:  # readings staged from an iterable do not fit the room left
                        if not batch_items:
                            raise
                        continue
                    if b is not None and b.count:  # a spool says None when empty
                        it = s.make(b)
                        if batch_items and it.wire_length() > room:
                            continue  # a spool's batch has one record at least: it starts the next request
                        room -= it.wire_length()
                        batch_items.append(it)
                        taken.append((s, b))
            if not batch_items:
                return
            counts = {"readings": 0, "events": 0}
            for s, b in taken:
                counts[s.kind] += b.count
            r = None
            try:
                body = multipart.MultipartBody(batch_items)
                r = self._authed("POST", _EXCHANGE, {"Content-Type": body.content_type}, body)
                report.requests += 1
                if not 200 <= r.status < 300:
                    raise self._failure(r, "exchange")
            except Rejected as e:
                if r is None or r.status not in (400, 403, 413):
                    # no verdict on this data (the token endpoint's answer, a 404...): later, unchanged
                    report.add(Outcome(RETRY, mine + pending, counts["readings"], counts["events"], e.message,
                                       self._backoff(e)))
                    return
                # 413 from a proxy or gateway with a body limit below ours: the same data again in
                # smaller requests, down to one record, and every later exchange of this agent with it
                used = limit - room
                smaller = used // 2
                for it in mine + pending:
                    smaller = max(smaller, it.wire_length())
                n = len(mine)
                for s, b in taken:
                    n += b.count
                    if s.fixed:
                        n = 0
                        break
                if e.status == 413 and taken and smaller < used and n > 1:
                    self._warn(msg(_W, 8) % (used + multipart.BODY_OVERHEAD, smaller + multipart.BODY_OVERHEAD))
                    self.body_limit = smaller + multipart.BODY_OVERHEAD
                    limit = smaller
                    pending[:0] = mine
                    continue
                if len(mine) + len(taken) > 1 and not alone:
                    alone = True  # whose refusal? each again on its own, the innocent ones are sent
                    pending[:0] = mine
                    continue
                kept = True
                for s, b in taken:
                    if self.aside.add(s.kind, e.message, source=b):
                        s.source.ack(b)
                    else:
                        kept = False  # a full flash refused the entry: the batch stays, tried again later
                if not kept:
                    at = self._backoff(e)
                    report.add(Outcome(RETRY, mine + pending, counts["readings"], counts["events"], e.message, at))
                    return
                report.add(Outcome(REJECTED, mine, counts["readings"], counts["events"], e.message))
                continue
            except OnboardingRequired:
                raise
            except MindConnectError as e:
                if not e.retryable and not isinstance(e, AuthError):
                    raise
                at = self._backoff(e)
                report.add(Outcome(RETRY, mine + pending, counts["readings"], counts["events"], e.message, at))
                return
            for s, b in taken:
                s.source.ack(b)
            self.failures = 0
            self.retry_at_ms = None
            last = report.outcomes[-1] if report.outcomes else None
            if not mine and last is not None and last.status == SENT and not last.items:
                # a backlog drain keeps one outcome, not one per request
                last.readings += counts["readings"]
                last.events += counts["events"]
            else:
                report.add(Outcome(SENT, mine, counts["readings"], counts["events"]))
