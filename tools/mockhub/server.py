"""A small threaded HTTP/1.1 server with keep-alive, optional TLS and transport-level faults.

Written on raw sockets rather than http.server because faults have to act on the bytes: drop the
connection after N bytes of a request or a response, truncate or garble a response, present another
certificate. Every response carries Content-Length (0 on empty bodies), as MCL requires.
"""

import selectors
import socket
import ssl
import threading
import time
import urllib.parse
from http import HTTPStatus

MAX_HEAD = 64 * 1024
PEEK_BODY = 64 * 1024
IDLE_TIMEOUT_S = 30


class Request:
    def __init__(self, method, target, version, headers, conn_id, seq):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # lower-case name -> value
        split = urllib.parse.urlsplit(target)
        self.path = split.path
        self.query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        self.body = b""
        self.conn_id = conn_id
        self.seq = seq  # 1 for the first request on its connection

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)


class Response:
    def __init__(self, status, body=b"", headers=None, content_type=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode()
        self.headers = list(headers or [])
        if content_type:
            self.headers.append(("Content-Type", content_type))

    def raw(self, close):
        reason = HTTPStatus(self.status).phrase if self.status in HTTPStatus._value2member_map_ else "Status"
        lines = ["HTTP/1.1 %d %s" % (self.status, reason)]
        lines += ["%s: %s" % kv for kv in self.headers]
        lines.append("Content-Length: %d" % len(self.body))
        if close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), self.body


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.connections = 0
        self.handshakes = 0
        self.handshake_failures = 0
        self.requests = 0
        self.per_connection = {}  # conn id -> requests on it

    def snapshot(self):
        with self.lock:
            return {"connections": self.connections, "handshakes": self.handshakes,
                    "handshake_failures": self.handshake_failures, "requests": self.requests,
                    "requests_per_connection": [self.per_connection[k] for k in sorted(self.per_connection)]}

    def reset(self):
        with self.lock:
            self.connections = self.handshakes = self.handshake_failures = self.requests = 0
            self.per_connection = {}


class _Closed(Exception):
    pass


class Server:
    """Serves app on 127.0.0.1:port. app provides: tls_context() (or None for plain HTTP),
    fault_for(req), handle(req), fault_response(fault, req), too_large(req), max_body (fault_for may set
    req.max_body for a route that takes bigger bodies)."""

    def __init__(self, app, port=0, host="127.0.0.1", name="mockhub"):
        self.app = app
        self.name = name
        self.counters = Counters()
        self.sock = socket.create_server((host, port))
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._conns = set()
        self._conns_lock = threading.Lock()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._accept_loop, name=self.name + "-accept", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self.sock.close()
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept_loop(self):
        with selectors.DefaultSelector() as sel:
            sel.register(self.sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                if not sel.select(0.1):
                    continue
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    continue
                with self.counters.lock:
                    self.counters.connections += 1
                    conn_id = self.counters.connections
                    self.counters.per_connection[conn_id] = 0
                threading.Thread(target=self._serve, args=(conn, conn_id), daemon=True,
                                 name="%s-conn-%d" % (self.name, conn_id)).start()

    def _track(self, conn, add):
        with self._conns_lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _serve(self, conn, conn_id):
        conn.settimeout(IDLE_TIMEOUT_S)
        self._track(conn, True)
        try:
            ctx = self.app.tls_context()
            if ctx is not None:
                plain = conn
                conn = ctx.wrap_socket(plain, server_side=True, do_handshake_on_connect=False)
                self._track(plain, False)
                self._track(conn, True)
                try:
                    conn.do_handshake()
                except (ssl.SSLError, OSError):
                    with self.counters.lock:
                        self.counters.handshake_failures += 1
                    return
                with self.counters.lock:
                    self.counters.handshakes += 1
            reader = _Reader(conn)
            seq = 0
            while not self._stop.is_set():
                seq += 1
                if not self._one_request(conn, reader, conn_id, seq):
                    return
        except (_Closed, OSError, ssl.SSLError):
            return
        finally:
            self._track(conn, False)
            try:
                conn.close()
            except OSError:
                pass

    def _one_request(self, conn, reader, conn_id, seq):
        """Serve one request; False when the connection is to be closed."""
        head = reader.read_head()
        if head is None:
            return False
        try:
            req, keep = _parse_head(head, conn_id, seq)
        except ValueError as e:
            conn.sendall(b"".join(Response(400, '{"message":"%s"}' % e, content_type="application/json").raw(True)))
            return False
        with self.counters.lock:
            self.counters.requests += 1
            self.counters.per_connection[conn_id] = seq
        if req.header("expect", "").lower() == "100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        # Small bodies are read before faults are chosen, so a fault can name the agent of a token
        # request (its identity is in the body); a big body can then still be cut off midway.
        too_big = None
        if req.header("transfer-encoding") is None and _content_length(req) <= min(PEEK_BODY, self.app.max_body):
            too_big = reader.read_body(req, self.app.max_body)
        fault = self.app.fault_for(req)
        if fault is not None and fault.drop_after_request_bytes is not None:
            if too_big is None:
                reader.read_body_prefix(req, max(0, fault.drop_after_request_bytes - len(head)))
            return False
        if too_big is None:
            too_big = reader.read_body(req, getattr(req, "max_body", self.app.max_body))
        if fault is not None and fault.delay_s:
            time.sleep(fault.delay_s)
        if too_big:
            resp = self.app.too_large(req)
        elif fault is not None and fault.status:
            resp = self.app.fault_response(fault, req)
        else:
            resp = self.app.handle(req)
        transform = fault.transport if fault is not None else None
        close = not keep or transform is not None
        head_b, body_b = resp.raw(close)
        if transform is None:
            conn.sendall(head_b + body_b)
            return keep
        data = transform(head_b, body_b)
        if data:
            conn.sendall(data)
        return False


def _parse_head(head, conn_id, seq):
    lines = head.decode("latin-1").split("\r\n") if b"\r\n" in head else head.decode("latin-1").split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("malformed request line")
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        if ":" not in line:
            raise ValueError("malformed header line")
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    req = Request(parts[0], parts[1], parts[2], headers, conn_id, seq)
    conn_hdr = headers.get("connection", "").lower()
    keep = conn_hdr != "close" if parts[2] == "HTTP/1.1" else conn_hdr == "keep-alive"
    return req, keep


def _content_length(req):
    try:
        return int(req.header("content-length", "0") or 0)
    except ValueError:
        return 0


class _Reader:
    """Buffered reads from a socket: a request head, then its body (Content-Length or chunked)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise _Closed()
        self.buf += data

    def read_head(self):
        while True:
            for sep in (b"\r\n\r\n", b"\n\n"):
                i = self.buf.find(sep)
                if i >= 0:
                    head = bytes(self.buf[:i])
                    del self.buf[:i + len(sep)]
                    return head.lstrip(b"\r\n")
            if len(self.buf) > MAX_HEAD:
                return None
            try:
                self._fill()
            except (_Closed, socket.timeout):
                return None

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _line(self):
        while b"\n" not in self.buf:
            self._fill()
        i = self.buf.find(b"\n")
        line = bytes(self.buf[:i + 1])
        del self.buf[:i + 1]
        return line.strip()

    def read_body_prefix(self, req, n):
        """Consume up to n bytes of the body (for the drop-after-N-bytes fault)."""
        n = min(n, _content_length(req))
        while len(self.buf) < n:
            self._fill()

    def read_body(self, req, limit):
        """Read the body into req.body; True (body discarded) when it is longer than limit."""
        if req.header("transfer-encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                data = self._take(size)
                if self._line():
                    raise _Closed()
                total += size
                if total <= limit:
                    chunks.append(data)
            req.body = b"".join(chunks) if total <= limit else b""
            return total > limit
        length = _content_length(req)
        if length > limit:
            left = length
            while left > 0:
                if not self.buf:
                    self._fill()
                n = min(left, len(self.buf))
                del self.buf[:n]
                left -= n
            return True
        req.body = self._take(length)
        return False
