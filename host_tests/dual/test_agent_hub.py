# An in-process stand-in for the hub's HTTP API, used by the agent logic tests on both runtimes.
# It speaks the Response interface of mindconnect.http (status, reason, headers, body, json()) and
# enforces the rules the agent must cope with: single-use IAT, HS256 assertions checked against the
# secrets it issued and its own clock, rotation leaving {used, new} valid and superseding the result of
# an earlier rotation with the same credential, DSC eTags, mapping conflicts, exchange body limits.
# (No test functions here; tools/mockhub is the full mock, used by the end-to-end tests.)
import json

from mindconnect import jwt
from mindconnect.errors import NetworkError


class Resp:
    def __init__(self, status, doc=None, headers=None, body=b""):
        self.status = status
        self.reason = "R%d" % status
        self.headers = headers or {}
        self.body = json.dumps(doc).encode() if doc is not None else body

    def json(self):
        return json.loads(self.body)


def _bytes(body):
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    out = []
    body.write_to(lambda b: out.append(bytes(b)))
    data = b"".join(out)
    if len(data) != body.length:
        raise AssertionError("body length %d, declared %d" % (len(data), body.length))
    return data


class FakeHub:
    def __init__(self, now_s=1764050571, secret_lifetime=30 * 86400, token_lifetime=3600):
        self.now_s = now_s
        self.secret_lifetime = secret_lifetime
        self.token_lifetime = token_lifetime
        self.iats = {"IAT-1"}
        self.client_id = "cid0123"
        self.secrets = {}  # secret -> expires_at
        self.rats = {}  # rat -> [its own secret, (secret, rat) of the last rotation done with it]
        self.tokens = {}  # token -> expires_at
        self.calls = []
        self.faults = []  # (method, path prefix, Resp or exception), used once each
        self.n = 0
        self.dsc = None
        self.etag = 0
        self.mappings = []
        self.bodies = []
        self.max_body = 10485760
        self.fail_writes_after = None  # bytes: drop the connection mid-upload
        self.registrations = 0
        self.rotations = 0

    def key(self, iat="IAT-1"):
        return json.dumps({"content": {"baseUrl": "https://hub.test:8443", "iat": iat,
                                       "clientCredentialProfile": ["SHARED_SECRET"],
                                       "clientId": self.client_id, "tenant": "tnt"}, "expiration": "x"})

    def _issue(self):
        self.n += 1
        for old in [k for k, v in self.secrets.items() if v <= self.now_s]:
            del self.secrets[old]
        secret = "secret-%d" % self.n
        rat = "rat-%d" % self.n
        self.secrets[secret] = self.now_s + self.secret_lifetime
        for old in [k for k, v in self.rats.items() if self.secrets.get(v[0], 0) <= self.now_s - self.secret_lifetime]:
            del self.rats[old]
        self.rats[rat] = [secret, None]
        return {"client_id": self.client_id, "client_secret": secret,
                "client_secret_expires_at": self.secrets[secret], "registration_access_token": rat,
                "registration_client_uri": "https://hub.test:8443/api/agentmanagement/v3/register/" + self.client_id}

    def fault(self, method, prefix, resp):
        self.faults.append((method, prefix, resp))

    def count(self, method, prefix):
        return len([c for c in self.calls if c[0] == method and c[1].startswith(prefix)])

    def request(self, method, path, headers=None, body=None, sink=None, max_body=None, resend=True):
        headers = headers or {}
        if self.fail_writes_after is not None and body is not None and hasattr(body, "write_to"):
            limit, self.fail_writes_after = self.fail_writes_after, None
            seen = [0]

            def write(b):
                seen[0] += len(b)
                if seen[0] > limit:
                    raise NetworkError("connection dropped while sending")
            self.calls.append((method, path, "dropped"))
            body.write_to(write)
        data = _bytes(body)
        self.calls.append((method, path))
        del self.calls[:-200]
        for f in self.faults:
            if f[0] == method and path.startswith(f[1]):
                self.faults.remove(f)
                if isinstance(f[2], Exception):
                    raise f[2]
                return f[2]
        r = self._route(method, path, headers, data)
        r.headers.setdefault("server-time", str(self.now_s))
        return r

    def _bearer(self, headers):
        v = headers.get("Authorization") or ""  # the agent sends it as bytes (kept, not copied per request)
        return (v.decode() if isinstance(v, bytes) else v)[7:]

    def _route(self, method, path, headers, data):
        if path == "/api/agentmanagement/v3/register":
            iat = self._bearer(headers)
            if iat not in self.iats:
                return Resp(401, {"error": "token_validation_failed"})
            self.iats.discard(iat)
            self.registrations += 1
            return Resp(201, self._issue())
        if path.startswith("/api/agentmanagement/v3/register/"):
            rat = self._bearer(headers)
            if rat not in self.rats:
                return Resp(401, {"error": "invalid RAT"})
            superseded = self.rats[rat][1]
            if superseded:  # an earlier result of rotating with this credential is void now
                self.secrets.pop(superseded[0], None)
                self.rats.pop(superseded[1], None)
            doc = self._issue()
            if rat in self.rats:
                self.rats[rat][1] = (doc["client_secret"], doc["registration_access_token"])
            self.rotations += 1
            return Resp(200, doc)
        if path == "/api/agentmanagement/v3/oauth/token_key":
            return Resp(200, {"value": "pem"})
        if path == "/api/agentmanagement/v3/oauth/token":
            return self._token(data.decode())
        if self._bearer(headers) not in self.tokens:
            return Resp(401, {"message": "token"})
        if path.endswith("/dataSourceConfiguration"):
            if method == "GET":
                doc = dict(self.dsc or {"configurationId": "", "dataSources": []})
                doc["eTag"] = str(self.etag)
                return Resp(200, doc)
            if headers.get("If-Match") != str(self.etag):
                return Resp(412, {"message": "eTag mismatch"})
            self.dsc = json.loads(data)
            self.etag += 1
            self.mappings = [m for m in self.mappings if m["keepMapping"]]
            return Resp(200, self.dsc)
        if path.startswith("/api/mindconnect/v3/dataPointMappings"):
            if method == "GET":
                return Resp(200, {"content": self.mappings, "last": True})
            m = json.loads(data)
            for e in self.mappings:
                if e["dataPointId"] == m["dataPointId"] and e["propertySetName"] == m["propertySetName"]:
                    return Resp(409, {"message": "exists"})
            self.mappings.append(m)
            return Resp(201, m)
        if path == "/api/mindconnect/v3/exchange":
            if len(data) > self.max_body:
                return Resp(413, {"message": "too large"})
            self.bodies.append(data)
            return Resp(200)
        return Resp(404, {"message": "no route " + path})

    def _token(self, form):
        assertion = form.split("client_assertion=")[1]
        head, claims, sig = assertion.split(".")
        doc = json.loads(jwt.b64url_decode(claims))
        if abs(doc["iat"] - self.now_s) > 300:
            return Resp(400, {"error": "invalid_client", "error_description": "iat"})
        signing = (head + "." + claims).encode()
        for secret, expires in self.secrets.items():
            if expires > self.now_s and jwt.b64url_encode(jwt.hmac_sha256(secret.encode(), signing)).decode() == sig:
                self.n += 1
                token = "tok-%d" % self.n
                for old in [k for k, v in self.tokens.items() if v <= self.now_s]:
                    del self.tokens[old]
                self.tokens[token] = self.now_s + self.token_lifetime
                return Resp(200, {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime})
        return Resp(400, {"error": "invalid_client"})

    def exchanged_parts(self):
        """Payload parts of every exchange body so far: [(meta type, payload bytes)]."""
        out = []
        for body in self.bodies:
            for chunk in body.split(b"Content-Type: application/vnd.siemens.mindsphere.meta+json\r\n\r\n")[1:]:
                meta, rest = chunk.split(b"\r\n", 1)
                payload = rest.split(b"\r\n\r\n", 1)[1]
                payload = payload[:payload.find(b"\r\n--")]  # the part ends at its first boundary
                out.append((json.loads(meta)["payload"]["type"], payload))
        return out
