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

import json

from mindconnect import credentials, items, jsonw, jwt, multipart
from mindconnect.clock import Clock, parse_http_date
from mindconnect.compat import urandom
from mindconnect.errors import (
    AuthError,
    ConfigError,
    MindConnectError,
    OnboardingRequired,
    ProtocolError,
    RateLimited,
    Rejected,
    ServerError,
)

NEW = "new"
READY = "ready"
NEEDS_KEY = "needs_key"

SENT = "sent"
RETRY = "retry"
REJECTED = "rejected"

BODY_LIMIT = 10485760
ROTATE_BEFORE_S = 25 * 3600
TOKEN_MARGIN_S = 300
BACKOFF_FIRST_MS = 2000
BACKOFF_MAX_MS = 3600000

_AM = "/api/agentmanagement/v3"
_REGISTER = _AM + "/register"
_TOKEN = _AM + "/oauth/token"
_TOKEN_KEY = _AM + "/oauth/token_key"
_MAPPINGS = "/api/mindconnect/v3/dataPointMappings"
_EXCHANGE = "/api/mindconnect/v3/exchange"
_JSON = "application/json"
_FORM_HEAD = ("grant_type=client_credentials&client_assertion_type="
              "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=")
_NEW_KEY = "get a new onboarding key from Insights Hub > Agent > Onboard and provision it"


def split_url(url):
    """(host, port, path) of an https URL."""
    if not url.startswith("https://"):
        raise ConfigError("the gateway URL must start with https:// (got %s)" % url)
    rest = url[8:]
    cut = rest.find("/")
    hostport, path = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
    host, port = hostport, 443
    if ":" in hostport:
        host, p = hostport.rsplit(":", 1)
        port = int(p)
    return host, port, path


def parse_key(key):
    """The onboarding key (JSON text or dict) -> its content dict, checked."""
    if isinstance(key, (str, bytes)):
        try:
            key = json.loads(key)
        except ValueError:
            raise ConfigError("the onboarding key is not JSON: copy it whole from Insights Hub") from None
    content = key.get("content") if isinstance(key, dict) else None
    if not isinstance(content, dict):
        raise ConfigError("the onboarding key has no 'content': copy it whole from Insights Hub")
    for name in ("baseUrl", "iat", "clientId", "tenant"):
        if not isinstance(content.get(name), str) or not content[name]:
            raise ConfigError("the onboarding key has no '%s': copy it whole from Insights Hub" % name)
    if "SHARED_SECRET" not in (content.get("clientCredentialProfile") or ["SHARED_SECRET"]):
        raise ConfigError("this agent supports the SHARED_SECRET profile only: create the agent with it")
    split_url(content["baseUrl"])
    return content


def quote(s):
    """Percent-encoding of a query value (everything but unreserved characters)."""
    out = []
    for b in s.encode():
        if 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or b in b"-._~":
            out.append(chr(b))
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def retry_after_s(headers, now_s):
    """Seconds from Retry-After (delta seconds or an HTTP date), or None."""
    v = headers.get("retry-after")
    if not v:
        return None
    v = v.strip()
    try:
        return max(0, int(v))
    except ValueError:
        pass
    try:
        return max(0, parse_http_date(v) - now_s)
    except ValueError:
        return None


def server_words(r):
    """The hub's own explanation from an error body (short), or the reason phrase."""
    try:
        doc = json.loads(r.body)
        if isinstance(doc, dict):
            for k in ("message", "error_description", "error"):
                if isinstance(doc.get(k), str) and doc[k]:
                    return doc[k][:200]
    except (ValueError, TypeError):
        pass
    return r.reason or ""


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
        return "<Outcome %s items=%d readings=%d events=%d %s>" % (
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

    def __init__(self, kind, source, make):
        self.kind = kind
        self.source = source
        self.make = make
        self.framing = make(multipart.BytesSource(b"")).wire_length()


class Agent:
    def __init__(self, store, connect=None, onboarding_key=None, clock=None, rand=None, http_factory=None,
                 checkpoint=None, log=None, body_limit=BODY_LIMIT, rotate_before_s=ROTATE_BEFORE_S,
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
        self.aside = items.AsideLog(self.store.folder + "/aside.log")
        self.failures = 0
        self.retry_at_ms = None
        self.requests = 0
        self.rotations = 0
        self._http = None
        self._token = None

    # -- plumbing ------------------------------------------------------------------------------------

    def _mark(self, name):
        if self.checkpoint:
            self.checkpoint(name)

    def _warn(self, msg):
        if self.log:
            self.log(msg)

    def _base_url(self):
        ident = self.store.current()
        if ident:
            return ident.base_url
        if self.key is None:
            raise OnboardingRequired("not onboarded yet: " + _NEW_KEY)
        return parse_key(self.key)["baseUrl"]

    def _client(self):
        if self._http is None:
            host, port, _ = split_url(self._base_url())
            if self.http_factory:
                self._http = self.http_factory(host, port)
            else:
                from mindconnect.http import HTTPClient
                self._http = HTTPClient(self.connect, host, port, timeout_ms=self.timeout_ms)
        return self._http

    def close(self):
        if self._http is not None and hasattr(self._http, "close"):
            self._http.close()
        self._http = None

    def _call(self, method, path, headers=None, body=None):
        r = self._client().request(method, path, headers=headers, body=body)
        self.requests += 1
        self.clock.observe_headers(r.headers)
        return r

    def _failure(self, r, what):
        """The error for an unexpected status (status codes are not exceptions in http.py)."""
        words = server_words(r)
        if r.status == 429:
            return RateLimited("%s: the hub is rate limiting (429); try again later" % what, 429,
                               retry_after_s(r.headers, self.clock.now()))
        if r.status >= 500:
            return ServerError("%s: the hub failed (%d %s); try again later" % (what, r.status, words), r.status,
                               retry_after_s(r.headers, self.clock.now()))
        if r.status == 401:
            return AuthError("%s: not authorized (401) even with a new token" % what, 401)
        return Rejected("%s refused (%d): %s" % (what, r.status, words), r.status)

    @property
    def state(self):
        if self.store.needs_key() is not None:
            return NEEDS_KEY
        return READY if self.store.current() else NEW

    # -- onboarding ----------------------------------------------------------------------------------

    def onboard(self):
        """Register with the onboarding key once; True if it registered now, False if already onboarded."""
        stuck = self.store.read(credentials.NEEDS_KEY)
        ids = self.store.identities()
        if ids and stuck is None:
            return False
        if self.key is None:
            if stuck:
                raise OnboardingRequired("%s: %s" % (stuck.get("reason"), _NEW_KEY))
            raise OnboardingRequired("not onboarded yet: " + _NEW_KEY)
        content = parse_key(self.key)
        fp = credentials.key_fingerprint(content["iat"])
        if (stuck and stuck.get("key_fp") == fp) or [i for i in ids if i.key_fp == fp]:
            raise OnboardingRequired("onboarding key already used: " + _NEW_KEY)
        r = self._call("POST", _REGISTER, {"Authorization": "Bearer " + content["iat"], "Content-Type": _JSON},
                       b"{}")
        if r.status in (400, 401, 403):
            reason = "onboarding key refused (%d: used or expired)" % r.status
            self.store.set_needs_key(reason, fp)
            raise OnboardingRequired("%s: %s" % (reason, _NEW_KEY))
        if r.status != 201:
            raise self._failure(r, "onboarding")
        try:
            ident = credentials.Identity.from_response(r.json(), content["tenant"], content["baseUrl"], fp)
        except ValueError as e:
            raise ProtocolError("onboarding: %s" % e) from None
        self.store.save_current(ident)
        self._mark("onboard:saved")
        self.store.drop_previous()
        self.store.drop_token()
        self.store.remove(credentials.MODEL)
        self.store.clear_needs_key()
        self._token = None
        return True

    def _identities(self):
        if self.store.needs_key() is not None or not self.store.current():
            self.onboard()
        return self.store.identities()

    # -- tokens, rotation, recovery ------------------------------------------------------------------

    def _ensure_time(self):
        """Never sign with an unset clock: learn the time from the gateway first."""
        if not self.clock.is_set():
            self._call("GET", _TOKEN_KEY)
        if not self.clock.is_set():
            raise ProtocolError("the clock is not set and the gateway sent no Date: set the time (NTP) first")

    def _request_token(self, ident):
        """An access token for ident (saved with its expiry), or None when the hub refused the secret."""
        self._ensure_time()
        now = self.clock.now()
        assertion = jwt.client_assertion(ident.client_id, ident.tenant, ident.client_secret, now,
                                         jwt.uuid4(self.rand))
        r = self._call("POST", _TOKEN, {"Content-Type": "application/x-www-form-urlencoded"},
                       _FORM_HEAD + assertion)
        if r.status in (400, 401):
            return None
        if r.status != 200:
            raise self._failure(r, "access token")
        doc = r.json()
        token = doc.get("access_token")
        if not isinstance(token, str) or not token:
            raise ProtocolError("the token endpoint sent no access_token")
        self.store.save_token(ident.client_id, token, now + int(doc.get("expires_in") or 3600))
        return token

    def _rotate(self, ident):
        """Rotate with ident's registration access token; the new identity (saved) or None if refused."""
        self._mark("rotate:before_put")
        _, _, path = split_url(ident.registration_client_uri)
        r = self._call("PUT", path, {"Authorization": "Bearer " + ident.registration_access_token,
                                     "Content-Type": _JSON},
                       jsonw.dumpb(jsonw.Obj(("client_id", ident.client_id))))
        if r.status in (400, 401, 403, 404):
            self._warn("key rotation refused (%d) for %s" % (r.status, ident.client_id))
            return None
        if not 200 <= r.status < 300:
            raise self._failure(r, "key rotation")
        try:
            new = credentials.Identity.from_response(r.json(), ident.tenant, ident.base_url, ident.key_fp)
        except ValueError as e:
            raise ProtocolError("key rotation: %s" % e) from None
        self._mark("rotate:after_put")
        # the identity whose RAT was used stays as the fallback until the new secret gave a token
        self.store.save_previous(ident)
        self.store.save_current(new)
        self.store.drop_token()
        self._mark("rotate:after_save")
        self.rotations += 1
        return new

    def _confirmed(self, token):
        """A token was obtained with the current identity: the fallback is no longer needed."""
        if self.store.has_previous():
            self._mark("rotate:after_token")
            self.store.drop_previous()
        self._token = token
        return token

    def _stuck(self, reason):
        cur = self.store.current()
        self.store.set_needs_key(reason, cur.key_fp if cur else None)
        self._token = None
        self._warn(reason)
        raise OnboardingRequired("%s: %s" % (reason, _NEW_KEY))

    def _rotation_due(self, ident):
        exp = ident.client_secret_expires_at
        return exp and self.clock.is_set() and self.clock.now() >= exp - self.rotate_before_s

    def authorize(self, force=False):
        """A valid access token: from flash when it has 5 minutes left, else a new one.

        Rotates the secret when it nears expiry; when the secret is refused, falls back to the
        previous identity, then to rotation with any stored registration access token; when all
        fail, enters NEEDS_KEY (persisted) and raises OnboardingRequired.
        """
        ids = self._identities()
        if self._rotation_due(ids[0]):
            new = self._rotate(ids[0])
            if new is not None:
                token = self._request_token(new)
                if token:
                    return self._confirmed(token)
            ids = self.store.identities()
        elif not force and not self.store.has_previous():  # with a fallback kept, confirm the new secret
            stored = self.store.token(ids[0].client_id)
            if stored and self.clock.now() < stored[1] - TOKEN_MARGIN_S:
                self._token = stored[0]
                return stored[0]
        for attempt in (0, 1):
            for i, ident in enumerate(ids):
                token = self._request_token(ident)
                if token:
                    if i:  # the newer secret is refused, an older one works: go back to it
                        self.store.save_current(ident)
                    return self._confirmed(token)
            skew = self.clock.last_skew_s
            if attempt or skew is None or -60 <= skew <= 60:
                break
            # every secret refused and the gateway's clock differs: take the gateway's time and retry
            self._warn("clock differs from the gateway by %d s; using the gateway's time" % skew)
            self.clock.offset_ms += skew * 1000
        for ident in ids:
            new = self._rotate(ident)
            if new is not None:
                token = self._request_token(new)
                if token:
                    return self._confirmed(token)
        self._stuck("every stored credential was refused")

    def _authed(self, method, path, headers=None, body=None):
        """A request with the access token; on 401 a new token and one retry."""
        h = dict(headers or {})
        h["Authorization"] = "Bearer " + self.authorize()
        r = self._call(method, path, h, body)
        if r.status == 401:
            self.store.drop_token()
            h["Authorization"] = "Bearer " + self.authorize(force=True)
            r = self._call(method, path, h, body)
        return r

    # -- data model and mappings ---------------------------------------------------------------------

    def _dsc_path(self):
        return _AM + "/agents/" + self.store.current().client_id + "/dataSourceConfiguration"

    def _put_dsc(self, model):
        for _ in (0, 1):
            r = self._authed("GET", self._dsc_path())
            if r.status != 200:
                raise self._failure(r, "reading the data source configuration")
            etag = r.json().get("eTag") or r.headers.get("etag") or "0"
            r = self._authed("PUT", self._dsc_path(), {"Content-Type": _JSON, "If-Match": str(etag)}, model.body)
            if r.status == 200:
                return
            if r.status != 412:
                raise self._failure(r, "data source configuration")
        raise Rejected("data source configuration: changed on the hub while it was updated (412 twice); "
                       "try again", 412)

    def sync_model(self, model, mappings=(), via_exchange=False):
        """Send the data model when its hash differs from the last one sent, then (re)assert mappings.

        Returns True when anything was sent. A mapping conflict raises Rejected naming both sides.
        """
        self.model = model
        ident = self._identities()[0]
        state = self.store.read(credentials.MODEL) or {}
        sent = False
        if state.get("dsc") != model.hash:
            if via_exchange:
                report = self.exchange([items.dsc_item(model)])
                if report.count(SENT, "items") != 1:
                    o = report.outcomes[-1]
                    if o.status == RETRY:
                        raise ServerError("data model: not sent; try again later", None,
                                          (o.retry_at_ms - self.clock.now_ms()) // 1000)
                    raise Rejected("data model refused: %s" % o.reason)
            else:
                self._put_dsc(model)
            state = {"dsc": model.hash}  # a new DSC drops the mappings record: re-assert them all
            self.store.write(credentials.MODEL, state)
            sent = True
        mh = items.mappings_hash(ident.client_id, mappings)
        if mappings and state.get("maps") != mh:
            self._assert_mappings(ident.client_id, mappings)
            state["maps"] = mh
            self.store.write(credentials.MODEL, state)
            sent = True
        return sent

    def _hub_mappings(self, agent_id):
        path = "%s?size=2000&filter=%s" % (_MAPPINGS, quote(jsonw.dumps(jsonw.Obj(("agentId", agent_id)))))
        r = self._authed("GET", path)
        if r.status != 200:
            raise self._failure(r, "reading the data point mappings")
        return r.json().get("content") or []

    def _assert_mappings(self, agent_id, mappings):
        existing = None
        conflicts = []
        for m in mappings:
            r = self._authed("POST", _MAPPINGS, {"Content-Type": _JSON}, items.mapping_body(agent_id, m))
            if r.status in (200, 201):
                continue
            if r.status != 409:
                raise self._failure(r, "data point mapping of %s" % m.get("dataPointId"))
            if existing is None:
                existing = self._hub_mappings(agent_id)
            for e in existing:
                if e.get("dataPointId") != m["dataPointId"] or e.get("propertySetName") != m["propertySetName"]:
                    continue
                if e.get("entityId") != m["entityId"] or e.get("propertyName") != m["propertyName"]:
                    conflicts.append("%s: hub has %s/%s.%s, configuration says %s/%s.%s" % (
                        m["dataPointId"], e.get("entityId"), e.get("propertySetName"), e.get("propertyName"),
                        m["entityId"], m["propertySetName"], m["propertyName"]))
        if conflicts:
            raise Rejected("data point mapping conflict (delete the hub's mapping or change the configuration): "
                           + "; ".join(conflicts), 409)

    # -- exchange ------------------------------------------------------------------------------------

    def _backoff(self, err):
        """Schedule the next attempt: Retry-After when given, else exponential; plus up to 25% jitter."""
        self.failures += 1
        ra = getattr(err, "retry_after", None)
        if ra is not None:
            delay = ra * 1000
        else:
            delay = min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS << min(self.failures - 1, 20))
        delay += delay * self.rand(1)[0] // 1024
        self.retry_at_ms = self.clock.now_ms() + delay
        return self.retry_at_ms

    def _sources(self, timeseries, events):
        out = []
        if timeseries is not None:
            if not hasattr(timeseries, "batch"):
                if self.model is None:
                    raise ConfigError("readings need the data model: call sync_model() first")
                timeseries = items.ReadingStage(self.store.folder + "/stage", items.RecordEncoder(self.model),
                                                timeseries, self.aside)
            cid = self.model.config_id if self.model else None
            if cid is None:
                raise ConfigError("time series need the data model: call sync_model() first")
            out.append(_Source("readings", timeseries, lambda s: items.timeseries_item(cid, s)))
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
        pending = list(items_)
        for it in pending:
            if it.wire_length() > limit:
                raise ConfigError("an item of %d bytes can never fit the %d-byte body limit: make it smaller"
                                  % (it.wire_length(), self.body_limit))
        if self.retry_at_ms is not None and self.clock.now_ms() < self.retry_at_ms:
            report.add(Outcome(RETRY, pending, reason="backing off", retry_at_ms=self.retry_at_ms))
            return report
        sources = self._sources(timeseries, events)
        try:
            self._drain(report, limit, pending, sources)
        finally:
            for s in sources:
                report.invalid += getattr(s.source, "invalid", 0)
        return report

    def _drain(self, report, limit, pending, sources):
        while True:
            room = limit
            batch_items = []
            while pending and pending[0].wire_length() <= room:
                room -= pending[0].wire_length()
                batch_items.append(pending.pop(0))
            mine = batch_items[:]
            taken = []
            for s in sources:
                if room > s.framing:
                    b = s.source.batch(room - s.framing)
                    if b is not None and b.count:  # a spool says None when empty
                        it = s.make(b)
                        room -= it.wire_length()
                        batch_items.append(it)
                        taken.append((s, b))
            if not batch_items:
                return
            counts = {"readings": 0, "events": 0}
            for s, b in taken:
                counts[s.kind] += b.count
            try:
                body = multipart.MultipartBody(batch_items)
                r = self._authed("POST", _EXCHANGE, {"Content-Type": body.content_type}, body)
                report.requests += 1
                if not 200 <= r.status < 300:
                    raise self._failure(r, "exchange")
            except Rejected as e:
                for s, b in taken:
                    self.aside.add(s.kind, e.message, source=b)
                    s.source.ack(b)
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
            report.add(Outcome(SENT, mine, counts["readings"], counts["events"]))
