"""pytest fixtures (host side); imported by host_tests/conftest.py.

`mockhub`: a fresh MockHub (state in tmp_path, ephemeral ports) per test.
`mockhub_env`: the same, with its addresses exported for dual-runtime tests:
    MOCKHUB_URL (https://localhost:<port>), MOCKHUB_HOST, MOCKHUB_PORT, MOCKHUB_CA_DER (path),
    MOCKHUB_ADMIN_URL (http://127.0.0.1:<port>; create agents with POST /admin/agents).
"""

import shutil

import pytest

from tools.mockhub import MockHub
from tools.mockhub.certs import TLSMaterial

__all__ = ["mockhub", "mockhub_env", "mockhub_tls_template"]


@pytest.fixture(scope="session")
def mockhub_tls_template(tmp_path_factory):
    """CA, server certificates and signing key made once per session (RSA key generation is slow)."""
    d = tmp_path_factory.mktemp("mockhub-tls")
    TLSMaterial(d)
    return d / "tls"


@pytest.fixture
def mockhub(tmp_path, mockhub_tls_template):
    state = tmp_path / "mockhub-state"
    shutil.copytree(mockhub_tls_template, state / "tls")
    hub = MockHub(state).start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def mockhub_env(mockhub, monkeypatch):
    monkeypatch.setenv("MOCKHUB_URL", mockhub.base_url)
    monkeypatch.setenv("MOCKHUB_HOST", "localhost")
    monkeypatch.setenv("MOCKHUB_PORT", str(mockhub.port))
    monkeypatch.setenv("MOCKHUB_CA_DER", str(mockhub.ca_der_path))
    monkeypatch.setenv("MOCKHUB_ADMIN_URL", mockhub.admin_url)
    return mockhub


# Helpers for the mockhub tests (host side): an HTTPS client that keeps its connection, client
# assertions built by hand, exchange bodies framed by hand.

import base64  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import ssl  # noqa: E402
import urllib.parse  # noqa: E402
import uuid  # noqa: E402

AM = "/api/agentmanagement/v3"
MC = "/api/mindconnect/v3"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def tls_context(hub, check_hostname=True):
    ctx = ssl.create_default_context(cafile=str(hub.ca_pem_path))
    ctx.check_hostname = check_hostname
    return ctx


class HubClient:
    """One keep-alive HTTPS connection to the hub; answers (status, headers lower-cased, body bytes)."""

    def __init__(self, hub):
        self.hub = hub
        self.conn = http.client.HTTPSConnection("localhost", hub.port, context=tls_context(hub), timeout=30)

    def request(self, method, path, body=b"", headers=None, token=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":")).encode()
            h.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def json(self, *a, **kw):
        status, headers, data = self.request(*a, **kw)
        return status, json.loads(data) if data else None

    def close(self):
        self.conn.close()


def b64url(data, pad=False):
    s = base64.urlsafe_b64encode(data).decode()
    return s if pad else s.rstrip("=")


def hs256_assertion(client_id, tenant, secret, now, pad=False, aud=("southgate",), lifetime=3600, jti=None,
                    alg_header=None, **override):
    header = alg_header or {"alg": "HS256", "typ": "JWT"}
    claims = {"iss": client_id, "sub": client_id, "aud": list(aud) if isinstance(aud, tuple) else aud,
              "iat": int(now), "nbf": int(now), "exp": int(now) + lifetime,
              "schemas": ["urn:siemens:mindsphere:v1"], "ten": tenant, "jti": str(uuid.uuid4()) if jti is None else jti}
    claims.update(override)
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode(), pad) + "."
                     + b64url(json.dumps(claims, separators=(",", ":")).encode(), pad))
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig, pad)


def token_form(assertion, percent=True):
    if percent:
        return urllib.parse.urlencode({"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                                       "client_assertion": assertion}).encode()
    return ("grant_type=client_credentials&client_assertion_type=%s&client_assertion=%s"
            % (JWT_BEARER, assertion)).encode()


class Agent:
    """An agent driven by hand through a HubClient: onboard, token, DSC, exchange."""

    def __init__(self, hub, client=None, **create):
        self.hub = hub
        self.client = client or HubClient(hub)
        self.created = hub.create_agent(**create)
        self.key = self.created["onboarding_key"]
        self.id = self.created["client_id"]
        self.tenant = self.key["content"]["tenant"]
        self.creds = None
        self.token = None

    def onboard(self):
        status, doc = self.client.json("POST", AM + "/register", {}, token=self.key["content"]["iat"])
        assert status == 201, doc
        self.creds = doc
        return doc

    def assertion(self, secret=None, **kw):
        return hs256_assertion(self.id, self.tenant, secret or self.creds["client_secret"], self.hub.now(), **kw)

    def get_token(self, assertion=None, percent=True):
        status, headers, body = self.client.request(
            "POST", AM + "/oauth/token", token_form(assertion or self.assertion(), percent),
            {"Content-Type": "application/x-www-form-urlencoded"})
        doc = json.loads(body)
        if status == 200:
            self.token = doc["access_token"]
        return status, headers, doc

    def put_dsc(self, dsc, etag="0"):
        return self.client.json("PUT", AM + "/agents/%s/dataSourceConfiguration" % self.id, dsc,
                                {"If-Match": etag}, token=self.token)

    def exchange(self, body, boundary, content_type=None):
        ctype = content_type or "multipart/mixed; boundary=" + boundary
        return self.client.request("POST", MC + "/exchange", body, {"Content-Type": ctype}, token=self.token)


def dsc_doc(config_id="cfg-1", points=(("temp", "DOUBLE"), ("hum", "INT"))):
    return {"configurationId": config_id, "dataSources": [{
        "name": "sensors", "description": "test",
        "dataPoints": [{"id": pid, "name": pid, "type": ptype, "unit": ""} for pid, ptype in points]}]}


def exchange_body(items, boundary="BBBBBBBBBBBBBBBBBBBB", nl="\r\n", final_nl=True):
    """A multipart/mixed body of items [(meta dict, payload content type, payload bytes)], framed by hand."""
    out = []
    for n, (meta, ctype, payload) in enumerate(items):
        sub = "S%019d" % n
        out.append(("--%s%sContent-Type: multipart/related; boundary=%s%s%s" % (boundary, nl, sub, nl, nl)).encode())
        out.append(("--%s%sContent-Type: application/vnd.siemens.mindsphere.meta+json%s%s" % (sub, nl, nl, nl))
                   .encode())
        out.append(json.dumps(meta, separators=(",", ":")).encode() + nl.encode())
        out.append(("--%s%sContent-Type: %s%s%s" % (sub, nl, ctype, nl, nl)).encode())
        out.append(payload + nl.encode())
        out.append(("--%s--%s" % (sub, nl)).encode())
    out.append(("--%s--" % boundary).encode() + (nl.encode() if final_nl else b""))
    return b"".join(out)


def meta(kind, version="1.0", details=None):
    payload = {"type": kind, "version": version}
    if details is not None:
        payload["details"] = details
    return {"type": "item", "version": "1.0", "payload": payload}


def ts_item(values, config_id="cfg-1", timestamp="2026-11-25T06:02:51.272Z"):
    """A time series item of [(dataPointId, value, qualityCode)] at one timestamp."""
    payload = [{"timestamp": timestamp, "values": [{"dataPointId": d, "value": v, "qualityCode": q}
                                                   for d, v, q in values]}]
    return meta("standardTimeSeries", details={"configurationId": config_id}), "application/json", \
        json.dumps(payload).encode()
