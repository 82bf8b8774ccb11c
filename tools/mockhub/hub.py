"""MockHub: the local MindConnect endpoint, as a Python object (tests) and behind the CLI.

HTTPS for the agent API (throwaway CA in the state folder), plain HTTP for the dashboard and the
admin API, SQLite for everything received. The clock is injectable and can be set through the admin
API, so a simulated node and the hub agree on simulated time.
"""

import collections
import email.utils
import json
import logging
import secrets
import ssl
import threading
import time
import uuid
from pathlib import Path

from tools.mockhub import admin, dataapi, iam, jwts, routes
from tools.mockhub.certs import TLSMaterial
from tools.mockhub.faults import Fault, FaultTable
from tools.mockhub.server import Response, Server
from tools.mockhub.store import Store

log = logging.getLogger("mockhub")

MAX_EXCHANGE_BYTES = 10 * 1024 * 1024
DEFAULT_SECRET_LIFETIME_S = 7 * 86400
DEFAULT_TOKEN_LIFETIME_S = 3600
NUMERIC_VALUES = ("drop", "accept")

File = collections.namedtuple("File", "name size sha256 file_type creation_date source path")


class MockHub:
    def __init__(self, state_dir, clock=None, strict=False, port=0, admin_port=0, tenant="mocktenant",
                 max_body=MAX_EXCHANGE_BYTES, previous_secret_valid="until_new_used", numeric_values="drop"):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._base_clock = clock or time.time
        self._frozen = None
        self._skew = 0
        self.strict = strict
        if numeric_values not in NUMERIC_VALUES:
            raise ValueError("numeric_values must be one of %s" % ", ".join(NUMERIC_VALUES))
        self.numeric_values = numeric_values  # a time series value sent as a JSON number: dropped or taken
        self.tenant = tenant
        self.max_body = max_body
        self.previous_secret_valid = previous_secret_valid
        self._port, self._admin_port = port, admin_port
        self.faults = FaultTable()
        self.url_key = secrets.token_bytes(32)  # signs the data lake's upload URLs (valid until a restart)
        self.endpoint_counts = collections.Counter()
        self._counts_lock = threading.Lock()
        self.store = None
        self.api = self.admin = None

    # lifecycle

    def start(self):
        self.tls = TLSMaterial(self.state_dir)
        self.signing_key = self.tls.signing_key
        self._ctx = self._server_context(self.tls.server_pem_path)
        self._wrong_ctx = self._server_context(self.tls.wrong_host_pem_path)
        self.store = Store(self.state_dir)
        self.api = Server(self, self._port, name="mockhub-api")
        self.admin = Server(admin.AdminApp(self), self._admin_port, name="mockhub-admin")
        self.api.start()
        self.admin.start()
        log.info("agent API on %s, dashboard and admin API on %s", self.base_url, self.admin_url)
        return self

    def stop(self):
        for s in (self.api, self.admin):
            if s:
                s.stop()
        if self.store:
            self.store.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @staticmethod
    def _server_context(pem_path):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(pem_path))
        return ctx

    @property
    def port(self):
        return self.api.port

    @property
    def base_url(self):
        return "https://localhost:%d" % self.api.port

    @property
    def admin_url(self):
        return "http://127.0.0.1:%d" % self.admin.port

    @property
    def ca_der_path(self):
        return self.tls.ca_der_path

    @property
    def ca_pem_path(self):
        return self.tls.ca_pem_path

    @property
    def ca_der(self):
        return self.tls.ca_der

    # time

    def now(self):
        """Epoch seconds of the hub's clock: frozen by set_clock(), else the injected clock."""
        return self._frozen if self._frozen is not None else self._base_clock()

    def set_clock(self, now):
        """Freeze the hub's time at `now` (epoch seconds); None returns to the injected clock."""
        self._frozen = None if now is None else float(now)

    def advance_clock(self, seconds):
        self._frozen = self.now() + float(seconds)

    def skew(self, seconds):
        """Shift the Date and Server-Time headers by `seconds` (validation still uses the true clock)."""
        self._skew = int(seconds)

    # agents

    def create_agent(self, name=None, secret_lifetime_s=DEFAULT_SECRET_LIFETIME_S,
                     token_lifetime_s=DEFAULT_TOKEN_LIFETIME_S, profile="SHARED_SECRET", previous_secret_valid=None):
        agent = iam.new_agent(self, name, secret_lifetime_s, token_lifetime_s, profile,
                              previous_secret_valid or self.previous_secret_valid)
        with self.store.lock:
            self.store.put_agent(agent)
        log.info("created agent %s (%s)", agent["client_id"], agent["name"])
        return self._key_result(agent)

    def reset_agent(self, client_id):
        with self.store.lock:
            agent = self._agent(client_id)
            iam.reset(self, agent)
            self.store.put_agent(agent)
        log.info("reset agent %s: new onboarding key", client_id)
        return self._key_result(agent)

    def _key_result(self, agent):
        key = iam.onboarding_key(self, agent)
        return {"client_id": agent["client_id"], "name": agent["name"], "onboarding_key": key,
                "onboarding_key_json": json.dumps(key, separators=(",", ":"))}

    def _agent(self, client_id):
        agent = self.store.agent(client_id)
        if agent is None:
            raise KeyError("no agent %r: list agents with GET /admin/agents" % client_id)
        return agent

    def expire_token(self, client_id):
        """Make every access token of this agent invalid now (the next exchange gets 401)."""
        self._agent(client_id)
        self.store.execute("UPDATE tokens SET revoked=1 WHERE client_id=?", (client_id,))

    def agent_state(self, client_id):
        a = self._agent(client_id)
        cur, prev = a["current"] or {}, a["previous"] or {}
        errors = self.store.query("SELECT COUNT(*) FROM rejected WHERE client_id=?", (client_id,))[0][0]
        return {"client_id": a["client_id"], "name": a["name"], "tenant": a["tenant"], "profile": a["profile"],
                "onboarded": a["onboarded"], "onboarding_key_used": a["iat_used"], "rotations": a["rotations"],
                "tokens_issued": a["tokens_issued"], "secret_expires_at": cur.get("expires_at"),
                "secret_fingerprint": jwts.fingerprint(cur.get("secret") or cur.get("rat")),
                "previous_secret_fingerprint": jwts.fingerprint(prev.get("secret") or prev.get("rat")),
                "previous_secret_valid": a["previous_secret_valid"], "new_secret_used": a["new_used"],
                "secret_lifetime_s": a["secret_lifetime_s"], "token_lifetime_s": a["token_lifetime_s"],
                "last_token_at": a["last_token_at"], "last_exchange_at": a["last_exchange_at"],
                "errors": errors, "dsc_etag": dataapi.dsc_view(a)["eTag"],
                "key_id": (cur.get("jwk") or {}).get("kid"), "previous_key_id": (prev.get("jwk") or {}).get("kid")}

    def agents(self):
        return [self.agent_state(a["client_id"]) for a in self.store.agents()]

    # faults and counters

    def fault(self, client_id=None, endpoint="*", **kw):
        """Inject a fault (see faults.Fault for the options); returns it."""
        f = self.faults.add(Fault(client_id, endpoint, **kw))
        log.info("fault added: %s", f.to_dict())
        return f

    def remove_fault(self, fault):
        """Remove one fault returned by fault() (e.g. an outage that ends); gone already is fine."""
        self.faults.remove(fault)

    def clear_faults(self):
        self.faults.clear()

    def counters(self):
        out = self.api.counters.snapshot()
        with self._counts_lock:
            out["endpoints"] = dict(self.endpoint_counts)
        return out

    def reset_counters(self):
        self.api.counters.reset()
        with self._counts_lock:
            self.endpoint_counts.clear()

    # queries for tests and the dashboard

    def timeseries(self, client_id):
        return self.store.query("SELECT timestamp, datapoint, value, quality FROM timeseries WHERE client_id=? "
                                "ORDER BY id", (client_id,))

    def events(self, client_id):
        return [dict(json.loads(d), _source=s) for s, d in self.store.query(
            "SELECT source, doc FROM events WHERE client_id=? ORDER BY id", (client_id,))]

    def files(self, client_id):
        return [File(*r) for r in self.store.query(
            "SELECT name, size, sha256, file_type, creation_date, source, path FROM files WHERE client_id=? "
            "ORDER BY id", (client_id,))]

    def custom(self, client_id):
        return [{"type": r[0], "version": r[1], "content_type": r[2], "size": r[3], "sha256": r[4],
                 "details": json.loads(r[5])} for r in self.store.query(
            "SELECT type, version, content_type, size, sha256, details FROM custom WHERE client_id=? ORDER BY id",
            (client_id,))]

    def dsc(self, client_id):
        return dataapi.dsc_view(self._agent(client_id))

    def dsc_history(self, client_id):
        return [{"eTag": r[0], "at": r[1], "source": r[2], "doc": json.loads(r[3])} for r in self.store.query(
            "SELECT etag, at, source, doc FROM dsc_history WHERE client_id=? ORDER BY id", (client_id,))]

    def mappings(self, client_id):
        return dataapi.mappings_of(self, client_id)

    def dropped(self, client_id):
        return [{"exchange": r[0], "at": r[1], "item": r[2], "kind": r[3], "location": r[4], "reason": r[5]}
                for r in self.store.query("SELECT exchange_id, at, item, kind, location, reason FROM dropped "
                                          "WHERE client_id=? ORDER BY id", (client_id,))]

    def rejected(self, client_id=None):
        sql = "SELECT client_id, at, endpoint, status, reason FROM rejected"
        rows = self.store.query(sql + " WHERE client_id=? ORDER BY id" if client_id else sql + " ORDER BY id",
                                (client_id,) if client_id else ())
        return [{"client_id": r[0], "at": r[1], "endpoint": r[2], "status": r[3], "reason": r[4]} for r in rows]

    def exchanges(self, client_id):
        return [{"at": r[0], "size": r[1], "items": r[2], "dropped": r[3]} for r in self.store.query(
            "SELECT at, size, items, dropped FROM exchanges WHERE client_id=? ORDER BY id", (client_id,))]

    # the Server's app interface (agent API)

    def tls_context(self):
        f = self.faults.take(None, "tls")
        return self._wrong_ctx if f is not None and f.wrong_host else self._ctx

    def fault_for(self, req):
        req.route = routes.match(req.method, req.path)
        with self._counts_lock:
            self.endpoint_counts[req.route.endpoint or "unknown"] += 1
        req.fault = None
        if req.route.handler is dataapi.datalake_put:
            req.max_body = dataapi.DATALAKE_MAX_BYTES  # an object, not an exchange: Blob storage takes more
        if req.route.endpoint is None:
            return None
        req.fault = self.faults.take(routes.client_of(req.route, req), req.route.endpoint)
        return req.fault

    def _headers(self, endpoint, fault):
        t = int(self.now()) + self._skew + (fault.skew_s if fault else 0)
        h = [("Date", email.utils.formatdate(t, usegmt=True))]
        if endpoint in routes.IAM_ENDPOINTS:
            h.append(("Server-Time", str(t)))
        return h

    def _error(self, req, status, message, error="invalid_request", extra=()):
        endpoint = req.route.endpoint
        if endpoint in routes.IAM_ENDPOINTS:
            body = {"error": error, "error_description": message}
        else:
            body = {"id": uuid.uuid4().hex, "message": message}
        return Response(status, json.dumps(body, separators=(",", ":")),
                        self._headers(endpoint, req.fault) + list(extra),
                        "application/json")

    def fault_response(self, fault, req):
        extra = [("Retry-After", str(fault.retry_after))] if fault.retry_after is not None else []
        msg = fault.message or "injected fault: status %d" % fault.status
        log.info("%s %s -> %d (injected)", req.method, req.path, fault.status)
        return self._error(req, fault.status, msg, "injected_fault", extra)

    def too_large(self, req):
        limit = getattr(req, "max_body", self.max_body)
        self._record_rejected(req, 413, "request body larger than %d bytes" % limit)
        return self._error(req, 413, "request body is larger than %d bytes: split it" % limit)

    def handle(self, req):
        route = req.route
        try:
            if route.endpoint is None:
                if route.allowed:
                    raise iam.HubError(405, "method %s not allowed; use %s" % (req.method, "/".join(route.allowed)))
                raise iam.HubError(404, "no such endpoint: %s" % req.path)
            with self.store.lock:
                status, body, headers = self._dispatch(req, route)
        except iam.HubError as e:
            self._record_rejected(req, e.status, e.message)
            log.info("%s %s -> %d %s", req.method, req.path, e.status, e.message)
            return self._error(req, e.status, e.message, e.error, e.headers)
        log.info("%s %s -> %d", req.method, req.path, status)
        if isinstance(body, (dict, list)):
            return Response(status, json.dumps(body, separators=(",", ":")),
                            self._headers(route.endpoint, req.fault) + headers, "application/json")
        return Response(status, body, self._headers(route.endpoint, req.fault) + headers)

    def _dispatch(self, req, route):
        if route.endpoint == "register":
            status, body, _ = iam.register(self, req)
        elif route.endpoint == "rotate":
            status, body, _ = iam.rotate(self, req, *route.args)
        elif route.endpoint == "token":
            status, body, _ = iam.token(self, req)
        elif route.endpoint == "token_key":
            doc = jwts.token_key_document(self.signing_key)
            status, body = 200, ({"keys": [doc]} if req.path.rstrip("/").endswith("keys") else doc)
        else:
            agent = iam.authorize(self, req) if route.needs_token else None
            return route.handler(self, req, agent, *route.args)
        return status, body, []

    def _record_rejected(self, req, status, reason):
        route = getattr(req, "route", None)
        client = routes.client_of(route, req) if route and route.endpoint else None
        if client is not None and self.store.agent(client) is None:
            client = None
        self.store.execute("INSERT INTO rejected (client_id, at, endpoint, status, reason) VALUES (?,?,?,?,?)",
                           (client, self.now(), (route.endpoint if route else None) or req.path, status, reason))
