"""Host-side servers for the http.py and transport.py tests; imported by host_tests/conftest.py.

One session of servers, shared by both runtimes (a dual test names `http_servers` in HOST_FIXTURES
and reads the addresses from environment variables):

    HTTPS_HOST, HTTPS_PORT     scripted HTTPS server (certificate for localhost and 127.0.0.1)
    HTTPS_CA_DER               path of the throwaway CA that signed it (DER)
    HTTPS_WRONG_CA_DER         path of another CA that did not
    WRONG_NAME_PORT            same server, with a certificate (from the right CA) for another name
    HTTP_PORT                  the scripted server without TLS; GET /_stats here gives the counters
    PROXY_PORT                 HTTP CONNECT proxy
    PROXY_AUTH_PORT            the same, requiring basic auth PROXY_USER / PROXY_PASSWORD
    CLOSED_PORT                nothing listens there (connection refused)
    BACKLOG_PORT               listens but never accepts, backlog full (connect times out)

The scripted server picks its behaviour from the request path (see ScriptedServer.route); each response
carries X-Conn (connection number) and X-Req (request number on that connection) so keep-alive is
counted by the server. GET /_stats?key=n on HTTP_PORT waits (up to 5 s) until counter key >= n;
GET /_poke?name=key adds 1 to a counter (a test's signal to a waiting handler, e.g. /reset).
"""

import base64
import datetime
import hashlib
import ipaddress
import json
import socket
import ssl
import struct
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PROXY_USER = "node-7"
PROXY_PASSWORD = "pr0xy-s3cret"
PATTERN = bytes(range(256)) * 64  # response bodies are prefixes of this repeated


def pattern(n):
    """The first n bytes of the repeating response pattern."""
    reps = n // len(PATTERN) + 1
    return (PATTERN * reps)[:n]


# --- throwaway PKI -----------------------------------------------------------------------------

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, issuer, public_key, signing_key, ca, sans=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b.sign(signing_key, hashes.SHA256())


def make_pki(folder):
    """CA, other CA and two server certificates in folder; returns a dict of paths."""
    ca_key, other_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert(_name("mindconnect test CA"), _name("mindconnect test CA"), ca_key.public_key(), ca_key, True)
    other = _cert(_name("some other CA"), _name("some other CA"), other_key.public_key(), other_key, True)
    paths = {"ca_der": folder / "ca.der", "wrong_ca_der": folder / "wrong_ca.der"}
    paths["ca_der"].write_bytes(ca.public_bytes(serialization.Encoding.DER))
    paths["wrong_ca_der"].write_bytes(other.public_bytes(serialization.Encoding.DER))
    servers = {
        "server": [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        "wrong_name": [x509.DNSName("elsewhere.invalid")],
    }
    for label, sans in servers.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(_name(sans[0].value), ca.subject, key.public_key(), ca_key, False, sans)
        pem = folder / (label + ".pem")
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        paths[label] = pem
    return paths


# --- counters ----------------------------------------------------------------------------------

class Stats:
    """Counters shared by the servers; wait_for blocks until a counter reaches a value."""

    def __init__(self):
        self.counts = {}
        self.cond = threading.Condition()

    def add(self, key, n=1):
        with self.cond:
            self.counts[key] = self.counts.get(key, 0) + n
            self.cond.notify_all()

    def snapshot(self, wait=None, timeout=5.0):
        with self.cond:
            if wait:
                self.cond.wait_for(lambda: all(self.counts.get(k, 0) >= v for k, v in wait.items()), timeout)
            return dict(self.counts)


# --- the scripted HTTP(S) server -----------------------------------------------------------------

class Conn:
    """Server side of one connection: buffered reads that count the application bytes received."""

    def __init__(self, sock, stats, label):
        self.sock = sock
        self.stats = stats
        self.label = label
        self.buf = bytearray()
        self.chunk = bytearray(65536)  # recv_into this: no allocation per read (the memory test)

    def _recv(self):
        n = self.sock.recv_into(self.chunk)
        if n and self.stats is not None:
            self.stats.add(self.label + "_app_bytes", n)
        return n

    def readline(self):
        while b"\n" not in self.buf:
            n = self._recv()
            if not n:
                return None
            self.buf += self.chunk[:n]
        i = self.buf.index(b"\n") + 1
        line, self.buf = bytes(self.buf[:i]), self.buf[i:]
        return line

    def consume(self, n, sha):
        """Read n body bytes into the hash without keeping them."""
        take = min(n, len(self.buf))
        sha.update(self.buf[:take])
        del self.buf[:take]
        n -= take
        view = memoryview(self.chunk)
        while n > 0:
            got = self._recv()
            if not got:
                raise ConnectionError("client closed mid-body")
            use = min(got, n)
            sha.update(view[:use])
            n -= use
            if got > use:
                self.buf += view[use:got]

    def wait_eof(self):
        while self._recv():
            pass


class Listener:
    """A listening socket on 127.0.0.1 (ephemeral port) whose accept loop hands sockets to on_accept."""

    def start_listening(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def close(self):
        self.lsock.close()

    def _accept_loop(self):
        while True:
            try:
                sock, _ = self.lsock.accept()
            except OSError:
                return
            self.on_accept(sock)


class ScriptedServer(Listener):
    """A threaded HTTP/1.1 server whose answers are chosen by the request path (see route)."""

    def __init__(self, stats, label, cert=None, admin_of=None):
        self.stats = stats
        self.label = label
        self.admin_of = admin_of
        self.ctx = None
        if cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(str(cert))
        self.conn_ids = 0
        self.lock = threading.Lock()
        self.start_listening()

    def on_accept(self, sock):
        with self.lock:
            self.conn_ids += 1
            cid = self.conn_ids
        threading.Thread(target=self._serve, args=(sock, cid), daemon=True).start()

    def _serve(self, sock, cid):
        sock.settimeout(10)
        self.stats.add(self.label + "_connections")
        try:
            if self.ctx:
                try:
                    sock = self.ctx.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError):
                    self.stats.add(self.label + "_tls_failed")
                    return
                self.stats.add(self.label + "_tls_ok")
            conn = Conn(sock, None if self.admin_of else self.stats, self.label)
            nreq = 0
            while True:
                req = self._read_request(conn)
                if req is None:
                    return
                nreq += 1
                self.stats.add(self.label + "_requests")
                if not self.route(conn, req, "%d" % cid, "%d" % nreq):
                    return
        except (OSError, ConnectionError):
            return
        finally:
            try:
                sock.close()
            except OSError:
                pass
            self.stats.add(self.label + "_closed")

    def _read_request(self, conn):
        line = conn.readline()
        if not line:
            return None
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers = []
        while True:
            h = conn.readline()
            if h in (None, b"\r\n", b"\n"):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers.append([name, value.strip()])
        length = int(dict((k.lower(), v) for k, v in headers).get("content-length", "0"))
        sha = hashlib.sha256()
        conn.consume(length, sha)
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        return {"method": method, "target": target, "path": url.path, "query": query, "headers": headers,
                "length": length, "sha256": sha.hexdigest()}

    @staticmethod
    def _send(sock, status, headers=(), body=b"", length=True):
        head = ["HTTP/1.1 %s" % status] + ["%s: %s" % kv for kv in headers]
        if length:
            head.append("Content-Length: %d" % len(body))
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    def route(self, conn, req, cid, nreq):
        """Answer one request; False closes the connection."""
        sock, path, q = conn.sock, req["path"], req["query"]
        ids = [("X-Conn", cid), ("X-Req", nreq)]
        n = int(q.get("n", "5"))
        if path == "/_stats" and self.admin_of:
            want = {k: int(v) for k, v in q.items()}
            self._send(sock, "200 OK", [("Content-Type", "application/json")],
                       json.dumps(self.admin_of.snapshot(want)).encode())
        elif path == "/echo":
            self._send(sock, "200 OK", ids + [("Content-Type", "application/json")], json.dumps(req).encode())
        elif path == "/size":
            body = pattern(n)
            if req["method"] == "HEAD":
                self._send(sock, "200 OK", ids + [("Content-Length", n)], length=False)
            else:
                self._send(sock, "200 OK", ids, body)
        elif path == "/chunked":
            size = int(q.get("chunk", "100"))
            body = pattern(n)
            out = []
            for i in range(0, n, size):
                piece = body[i:i + size]
                out.append(b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n")
            out.append(b"0\r\nX-Trailer: yes\r\n\r\n")
            self._send(sock, "200 OK", ids + [("Transfer-Encoding", "chunked")], b"".join(out), length=False)
        elif path == "/status":
            self._send(sock, "%s Whatever" % q["code"], ids, length=False)
        elif path == "/refuse":  # a 413 with a big page (a proxy's), n bytes, chunked if asked
            body = pattern(n)
            if q.get("chunked"):
                body = b"%x\r\n" % n + body + b"\r\n0\r\n\r\n"
                self._send(sock, "413 Too Large", ids + [("Transfer-Encoding", "chunked")], body, length=False)
            else:
                self._send(sock, "413 Too Large", ids, body)
        elif path == "/continue":
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX-A: 1\r\n\r\n")
            self._send(sock, "201 Created", ids, b"made")
        elif path == "/headers":
            self._send(sock, "200 OK", ids + [("X-Dup", "a"), ("x-dup", "b"), ("Content-TYPE", "text/plain"),
                                              ("Date", "Sun, 06 Nov 1994 08:49:37 GMT")], b"h")
        elif path == "/close":
            self._send(sock, "200 OK", ids + [("Connection", "close")], b"bye")
            return False
        elif path == "/close-after":  # announces keep-alive, then hangs up while the client idles
            self._send(sock, "200 OK", ids, b"then gone")
            return False
        elif path == "/until-close":
            self._send(sock, "200 OK", ids, pattern(n), length=False)
            return False
        elif path == "/garbage":
            sock.sendall(b"SPAM SPAM SPAM\r\n\r\n")
            return False
        elif path == "/long-header":
            self._send(sock, "200 OK", ids + [("X-Long", "a" * 2000)], b"x")
        elif path == "/many-headers":
            self._send(sock, "200 OK", ids + [("X-H%d" % i, i) for i in range(40)], b"x")
        elif path == "/bad-chunk":
            self._send(sock, "200 OK", ids + [("Transfer-Encoding", "chunked")], b"zz\r\nhello\r\n0\r\n\r\n",
                       length=False)
        elif path == "/truncated":
            self._send(sock, "200 OK", ids + [("Content-Length", "100")], b"0123456789", length=False)
            return False
        elif path == "/_poke" and self.admin_of:
            self.admin_of.add(q["name"])
            self._send(sock, "200 OK")
        elif path == "/reset":  # part of a big body; once counter reset_go reaches go, a TCP reset
            self._send(sock, "200 OK", ids + [("Content-Length", "1000000")], pattern(20000), length=False)
            self.stats.snapshot({"reset_go": int(q["go"])})
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        elif path == "/stale-408":  # answers; once counter stale_go reaches go, a 408 for the idle
            # connection (as Node.js servers send), counted in stale_sent; closes when the next request came
            self._send(sock, "200 OK", ids, b"fresh")
            self.stats.snapshot({"stale_go": int(q["go"])})
            sock.sendall(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            self.stats.add("stale_sent")
            conn.readline()
            return False
        elif path == "/hangup":  # reads the request and closes without a word
            return False
        elif path == "/slow":  # reads the request, never answers, waits for the client to give up
            conn.wait_eof()
            return False
        else:
            self._send(sock, "200 OK", ids, b"hello")
        return True


# --- CONNECT proxy -----------------------------------------------------------------------------

class ConnectProxy(Listener):
    """A threaded HTTP CONNECT proxy to 127.0.0.1/localhost, with optional basic auth."""

    def __init__(self, stats, label, auth=None):
        self.stats = stats
        self.label = label
        self.auth = auth
        self.start_listening()

    def on_accept(self, sock):
        threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        sock.settimeout(10)
        upstream = None
        try:
            conn = Conn(sock, None, self.label)
            line = conn.readline() or b""
            headers = {}
            while True:
                h = conn.readline()
                if h in (None, b"\r\n", b"\n"):
                    break
                name, _, value = h.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            method, target = (line.decode("latin-1").split(" ") + ["", ""])[:2]
            host, _, port = target.rpartition(":")
            if host == "latin1.invalid":  # a refusal whose reason phrase is Latin-1 (obs-text)
                sock.sendall(b"HTTP/1.1 403 Zugang f\xfcr Sie gesperrt\r\nContent-Length: 0\r\n\r\n")
                return
            if method != "CONNECT" or host not in ("127.0.0.1", "localhost"):
                sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            if self.auth and headers.get("proxy-authorization") != self.auth:
                self.stats.add(self.label + "_refused")
                sock.sendall(b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="t"'
                             b"\r\nContent-Length: 0\r\n\r\n")
                return
            upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
            self.stats.add(self.label + "_tunnels")
            sock.sendall(b"HTTP/1.1 200 Connection established\r\nX-Proxy: test\r\n\r\n")
            if conn.buf:
                upstream.sendall(conn.buf)
            t = threading.Thread(target=_pipe, args=(upstream, sock), daemon=True)
            t.start()
            _pipe(sock, upstream)
            t.join(10)
        except OSError:
            return
        finally:
            sock.close()
            if upstream is not None:
                upstream.close()


def _pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


# --- fixtures ----------------------------------------------------------------------------------

def _backlog_full_listener():
    """A socket that listens but never accepts, its backlog filled: connects to it time out."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(lsock.getsockname())
        except BlockingIOError:
            pass
        fillers.append(s)
    return lsock, fillers


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="session")
def http_servers_session(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("http-pki"))
    stats = Stats()
    https = ScriptedServer(stats, "https", cert=pki["server"])
    wrong_name = ScriptedServer(stats, "wrong_name", cert=pki["wrong_name"])
    plain = ScriptedServer(Stats(), "http", admin_of=stats)
    auth = "Basic " + base64.b64encode(("%s:%s" % (PROXY_USER, PROXY_PASSWORD)).encode()).decode()
    proxy = ConnectProxy(stats, "proxy")
    proxy_auth = ConnectProxy(stats, "proxy_auth", auth=auth)
    backlog, fillers = _backlog_full_listener()
    env = {
        "HTTPS_HOST": "localhost",
        "HTTPS_PORT": str(https.port),
        "HTTPS_CA_DER": str(pki["ca_der"]),
        "HTTPS_WRONG_CA_DER": str(pki["wrong_ca_der"]),
        "WRONG_NAME_PORT": str(wrong_name.port),
        "HTTP_PORT": str(plain.port),
        "PROXY_PORT": str(proxy.port),
        "PROXY_AUTH_PORT": str(proxy_auth.port),
        "PROXY_USER": PROXY_USER,
        "PROXY_PASSWORD": PROXY_PASSWORD,
        "CLOSED_PORT": str(_closed_port()),
        "BACKLOG_PORT": str(backlog.getsockname()[1]),
    }
    yield env
    for server in (https, wrong_name, plain, proxy, proxy_auth):
        server.close()
    for s in fillers + [backlog]:
        s.close()


@pytest.fixture
def http_servers(http_servers_session, monkeypatch):
    """The HTTP test servers, their addresses exported as environment variables (see module doc)."""
    for k, v in http_servers_session.items():
        monkeypatch.setenv(k, v)
    return http_servers_session
