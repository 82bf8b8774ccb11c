"""The admin API and dashboard (plain HTTP on 127.0.0.1): what tests, the CLI and people use to
create agents, inject faults, read what was received and drive the shared clock.

All answers are JSON except the dashboard (HTML) and the CA files.
"""

import json
import re

from tools.mockhub import dashboard
from tools.mockhub.server import Response

_QUERIES = ("timeseries", "events", "files", "custom", "dsc", "dsc_history", "mappings", "dropped", "rejected",
            "exchanges")
_AGENT_OPTIONS = ("name", "secret_lifetime_s", "token_lifetime_s", "profile", "previous_secret_valid")


class AdminError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _json_response(status, doc):
    return Response(status, json.dumps(doc, default=list), content_type="application/json")


class AdminApp:
    max_body = 1024 * 1024

    def __init__(self, hub):
        self.hub = hub

    def tls_context(self):
        return None

    def fault_for(self, req):
        return None

    def too_large(self, req):
        return _json_response(413, {"message": "admin requests are limited to 1 MB"})

    def handle(self, req):
        try:
            return self._route(req)
        except AdminError as e:
            return _json_response(e.status, {"message": str(e)})
        except KeyError as e:
            return _json_response(404, {"message": e.args[0] if e.args else "not found"})
        except (ValueError, TypeError) as e:
            return _json_response(400, {"message": str(e)})

    def _body(self, req):
        if not req.body:
            return {}
        try:
            doc = json.loads(req.body)
        except ValueError:
            raise AdminError(400, "body must be JSON") from None
        if not isinstance(doc, dict):
            raise AdminError(400, "body must be a JSON object")
        return doc

    def _route(self, req):
        hub, path, method = self.hub, req.path.rstrip("/") or "/", req.method
        if path == "/" and method == "GET":
            refresh = int(req.query.get("refresh", ["5"])[0])
            return Response(200, dashboard.render(hub, refresh), content_type="text/html; charset=utf-8")
        if path == "/admin/ca.der":
            return Response(200, hub.ca_der, content_type="application/x-x509-ca-cert")
        if path == "/admin/ca.pem":
            return Response(200, hub.ca_pem_path.read_bytes(), content_type="application/x-pem-file")
        if path == "/admin/info":
            return _json_response(200, {"base_url": hub.base_url, "admin_url": hub.admin_url,
                                        "ca_der_path": str(hub.ca_der_path), "ca_pem_path": str(hub.ca_pem_path),
                                        "strict": hub.strict, "numeric_values": hub.numeric_values,
                                        "tenant": hub.tenant, "now": hub.now()})
        if path == "/admin/agents":
            if method == "GET":
                return _json_response(200, hub.agents())
            if method == "POST":
                body = self._body(req)
                unknown = set(body) - set(_AGENT_OPTIONS)
                if unknown:
                    raise AdminError(400, "unknown option(s) %s; allowed: %s" % (sorted(unknown), _AGENT_OPTIONS))
                return _json_response(201, hub.create_agent(**body))
        m = re.match(r"/admin/agents/([^/]+)(?:/([a-z_-]+))?\Z", path)
        if m:
            return self._agent(req, m.group(1), m.group(2))
        if path == "/admin/faults":
            if method == "GET":
                return _json_response(200, hub.faults.list())
            if method == "POST":
                body = self._body(req)
                return _json_response(201, hub.fault(body.pop("client_id", None), body.pop("endpoint", "*"),
                                                     **body).to_dict())
            if method == "DELETE":
                hub.clear_faults()
                return Response(204)
        if path == "/admin/skew" and method == "POST":
            hub.skew(int(self._body(req).get("seconds", 0)))
            return _json_response(200, {"skew_s": hub._skew})
        if path == "/admin/clock":
            if method == "POST":
                body = self._body(req)
                if "now" in body:
                    hub.set_clock(body["now"])
                if "advance" in body:
                    hub.advance_clock(body["advance"])
            return _json_response(200, {"now": hub.now(), "frozen": hub._frozen is not None})
        if path == "/admin/counters":
            return _json_response(200, hub.counters())
        if path == "/admin/counters/reset" and method == "POST":
            hub.reset_counters()
            return _json_response(200, hub.counters())
        raise AdminError(404, "no admin endpoint %s %s (see docs/MOCKHUB.md)" % (method, path))

    def _agent(self, req, client_id, what):
        hub = self.hub
        if what is None and req.method == "GET":
            return _json_response(200, hub.agent_state(client_id))
        if what == "reset" and req.method == "POST":
            return _json_response(200, hub.reset_agent(client_id))
        if what == "expire-token" and req.method == "POST":
            hub.expire_token(client_id)
            return _json_response(200, hub.agent_state(client_id))
        if what in _QUERIES and req.method == "GET":
            hub.agent_state(client_id)  # 404 for an unknown agent
            return _json_response(200, getattr(hub, what)(client_id))
        raise AdminError(404, "no admin endpoint %s %s" % (req.method, req.path))
