"""HTTP/1.1 client over an injected stream factory, for a small heap.

    client = HTTPClient(Transport(ca_der).connect, "southgate.eu1.mindsphere.io")
    resp = client.request("POST", "/api/...", headers=[("Authorization", "Bearer ...")], body=multipart_body)

One connection is kept open and reused (keep-alive: a TLS handshake costs more than a request on an
ESP32). When a reused connection turns out closed before any response byte, the request is sent once
more on a new connection, so request bodies must be writable twice (the multipart sources are).

Memory is fixed whatever the body sizes: request bytes pass through one preallocated write buffer
(small writes from a body writer are coalesced so TLS does not send a record per write), responses are
read with readinto into one preallocated read buffer, and a response body is either handed to a sink
piece by piece or collected in RAM up to max_body bytes.

Status codes are not errors here: any complete response is returned (the agent maps them). Errors:
errors.NetworkError from the stream (connect, timeout, reset; ConnectionClosed when the server hangs
up mid-response) and errors.ProtocolError for a malformed response or one over a limit.
"""

import gc
import json

from mindconnect.compat import MICROPYTHON, const
from mindconnect.errors import ConfigError, ConnectionClosed, ProtocolError, msg

# const() with a leading underscore: inlined by the compiler, no name kept in RAM (see docs/AGENT.md, Memory)
MAX_LINE = const(1024)  # bytes of a status, header or chunk-size line, CRLF not counted
_MAX_HEADERS = const(32)
_MAX_INFORMATIONAL = const(4)  # 1xx responses skipped before the final one
WRITE_BUF = const(1024)
_READ_BUF = const(1026)  # MAX_LINE + CRLF
_HEX = b"0123456789abcdefABCDEF"
_BODY_METHODS = ("POST", "PUT", "PATCH")  # these send Content-Length: 0 when they have no body
# The wording of every error, one line each, taken by msg(_W, line): one str constant instead of 30 (in
# ROM form each str constant over 10 characters is an object of about 40 B in the heap; docs/AGENT.md).
_W = ("the response body went to a sink: there is nothing to parse\n"  # 0
      "the body of the %d response is not valid JSON\n"
      "%s contains a line break\n"
      "the request line\n"
      "the request path contains a space: percent-encode it\n"
      "a header name\n"  # 5
      "the request body wrote %d bytes but declared %d\n"
      "%s sent more than %d informational (1xx) responses\n"
      "bad Content-Length from %s\n"
      "%s did not answer with an HTTP status line (got %r)\n"
      "malformed header line from %s\n"  # 10
      "a header from %s is not UTF-8 text\n"
      "%s sent more than %d response headers\n"
      "bad chunk size from %s\n"
      "a chunk from %s is longer than its size line says\n"
      "%s sent more than %d trailer lines\n"  # 15
      "the response body from %s is over the limit of %d bytes: pass a sink or a larger max_body\n"
      "%s closed the connection after %d of %d body bytes\n"
      "%s closed the connection %s\n"
      "%s sent a %s longer than %d bytes\n"
      "before answering\n"  # 20: _readline's when and what
      "status line\n"
      "in the response header\n"
      "header line\n"
      "in a chunked body\n"
      "chunk-size line\n"  # 25
      "chunk end\n"
      "in the chunked trailer\n"
      "trailer line\n"
      "with 408 Request Timeout (an idle keep-alive connection)")


class Response:
    """A complete HTTP response: .status, .reason, .headers (lower-case names), .body (None if streamed)."""

    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def json(self):
        if self.body is None:
            raise ConfigError(msg(_W, 0))
        try:
            return json.loads(self.body)
        except ValueError:
            raise ProtocolError(msg(_W, 1) % self.status) from None

    def __repr__(self):
        # Never the body or header values: they can hold tokens.
        size = "streamed" if self.body is None else "%d bytes" % len(self.body)
        return "<Response %d %s, %s>" % (self.status, self.reason, size)


def _check_token(text, what):
    """Refuse request-line and header text (str or bytes) that would break the framing (CR, LF).
    what: a line of _W, or the name of the header whose value text is."""
    if isinstance(text, str):
        bad = "\r" in text or "\n" in text
    else:
        bad = 13 in text or 10 in text
    if bad:
        raise ConfigError(msg(_W, 2) % (msg(_W, what) if isinstance(what, int) else "header " + what))


def _pairs(headers):
    return headers.items() if isinstance(headers, dict) else headers or ()


class HTTPClient:
    """Requests to one host:port over connections from connect(host, port, timeout_ms).

    The stream that connect returns has write(buf), readinto(buf) -> int (0 at EOF) and close(), and
    raises errors.NetworkError (ConnectionClosed for a reset) with the timeout applied to every read.
    Counters: .connections (connections opened) and .requests (requests written, resends included).
    """

    def __init__(self, connect, host, port=443, timeout_ms=30000, max_body=16384, user_agent=None):
        self.connect = connect
        self.host = host
        self.port = port
        self.timeout_ms = timeout_ms
        self.max_body = max_body
        self.user_agent = user_agent
        self.connections = 0
        self.requests = 0
        self._where = "%s:%d" % (host, port)
        self._host_header = host if port in (80, 443) else self._where
        self._stream = None
        self._wbuf = bytearray(WRITE_BUF)
        self._wmv = memoryview(self._wbuf)
        self._wused = 0
        self._sent = 0
        self._rbuf = bytearray(_READ_BUF)
        self._rmv = memoryview(self._rbuf)
        self._rpos = 0
        self._rend = 0
        self._answered = False  # a response byte arrived for the request in flight

    def request(self, method, path, headers=None, body=None, sink=None, max_body=None, resend=True):
        """Send one request and read its whole response; returns a Response.

        headers: (name, value) pairs or a dict (values str, bytes or numbers); Host, Content-Length and
        Content-Type (from body.content_type) are added unless given. body: bytes, str, or an object with .length,
        .write_to(write) and optionally .content_type. sink: a callable given the response body in
        pieces (memoryviews valid only during the call); then .body is None and max_body does not apply.
        resend=False: a request that must not go twice as it is (a signed assertion whose jti the server
        may have taken) raises ConnectionClosed instead of being sent again on a new connection.
        """
        if isinstance(body, str):
            body = body.encode()
        head = self._head(method, path, headers, body)
        limit = self.max_body if max_body is None else max_body
        reused = self._stream is not None
        try:
            r = self._exchange(method, path, headers, head, body, sink, limit)
            if r.status != 408 or not reused:
                return r
            # 408 on a kept-alive connection: the server timed the idle connection out and said so
            # before closing it (Node.js servers do), and that answer was read as this request's. The
            # request was not taken: like a close before any answer byte.
            self.close()
            self._answered = False
            raise ConnectionClosed(msg(_W, 18) % (self._where, msg(_W, 29)))
        except ConnectionClosed:
            if not reused or self._answered or not resend:
                raise
        # The server had closed the idle keep-alive connection: once more on a new one.
        return self._exchange(method, path, headers, head, body, sink, limit)

    def close(self):
        """Close the connection (the next request opens a new one)."""
        stream = self._stream
        self._stream = None
        if stream is not None:
            stream.close()

    # --- request -----------------------------------------------------------------------------

    def _head(self, method, path, headers, body):
        """Check the request line and the headers before anything is sent; returns what to add:
        (Host?, User-Agent?, Content-Length or None, Content-Type or None).

        The head itself is never built in RAM: _send_head writes it piece by piece through the write
        buffer (an Authorization header alone is about 1 KB), again for a resend.
        """
        _check_token(method, 3)
        _check_token(path, 3)
        if " " in path:
            raise ConfigError(msg(_W, 4))
        if body is None:
            length = 0 if method in _BODY_METHODS else None
            ctype = None
        elif isinstance(body, (bytes, bytearray, memoryview)):
            length = len(body)
            ctype = None
        else:
            length = body.length
            ctype = getattr(body, "content_type", None)
        host = True
        agent = bool(self.user_agent)
        for name, value in _pairs(headers):
            _check_token(name, 5)
            if isinstance(value, (str, bytes)):
                _check_token(value, name)  # the value is not shown: it can be a secret
            name = name.lower()
            if name == "host":
                host = False
            elif name == "user-agent":
                agent = False
            elif name == "content-length":
                length = None
            elif name == "content-type":
                ctype = None
        return host, agent, length, ctype

    def _send_head(self, method, path, headers, head):
        host, agent, length, ctype = head
        w = self._write
        w(method.encode())
        w(b" ")
        w(path.encode())
        w(b" HTTP/1.1\r\n")
        if host:
            w(b"Host: ")
            w(self._host_header.encode())
            w(b"\r\n")
        for name, value in _pairs(headers):
            w(name.encode())
            w(b": ")
            if isinstance(value, bytes):  # as it is: an Authorization value is kept as bytes (1 KB)
                w(value)
            else:
                w(value.encode() if isinstance(value, str) else str(value).encode())
            w(b"\r\n")
        if agent:
            w(b"User-Agent: ")
            w(self.user_agent.encode())
            w(b"\r\n")
        if length is not None:
            w(b"Content-Length: ")
            w(str(length).encode())
            w(b"\r\n")
        if ctype:
            w(b"Content-Type: ")
            w(ctype.encode())
            w(b"\r\n")
        w(b"\r\n")

    def _exchange(self, method, path, headers, head, body, sink, limit):
        """One attempt: connect if needed, send, receive; any failure closes the connection."""
        self._answered = False
        try:
            if self._stream is None:
                self._stream = self.connect(self.host, self.port, self.timeout_ms)
                self.connections += 1
                self._rpos = self._rend = 0
            self._wused = 0
            self._send(method, path, headers, head, body)
            return self._receive(method, sink, limit)
        except BaseException:
            self.close()
            raise

    def _send(self, method, path, headers, head, body):
        self.requests += 1
        self._sent = 0
        self._send_head(method, path, headers, head)
        start = self._sent
        if isinstance(body, (bytes, bytearray, memoryview)):
            self._write(body)
        elif body is not None:
            body.write_to(self._write)
            if self._sent - start != body.length:
                raise ProtocolError(msg(_W, 6) % (self._sent - start, body.length))
        if self._wused:
            self._stream.write(self._wmv[:self._wused])
            self._wused = 0

    def _write(self, data):
        """Coalesce writes through the write buffer; the stream only sees full buffers or big pieces."""
        n = len(data)
        self._sent += n
        used = self._wused
        if used + n < WRITE_BUF:
            self._wbuf[used:used + n] = data
            self._wused = used + n
            return
        view = memoryview(data)
        take = WRITE_BUF - used
        self._wbuf[used:] = view[:take]
        self._stream.write(self._wbuf)
        rest = n - take
        if rest >= WRITE_BUF:
            self._stream.write(view[take:])
            rest = 0
        elif rest:
            self._wbuf[:rest] = view[take:]
        self._wused = rest

    # --- response ----------------------------------------------------------------------------

    def _receive(self, method, sink, limit):
        for _ in range(_MAX_INFORMATIONAL + 1):
            version, status, reason = self._status_line()
            headers = self._headers()
            if status >= 200:
                break
        else:
            raise ProtocolError(msg(_W, 7) % (self._where, _MAX_INFORMATIONAL))
        conn = headers.get("connection", "").lower()
        keep = "close" not in conn if version == b"HTTP/1.1" else "keep-alive" in conn
        length = headers.get("content-length")
        if method == "HEAD" or status in (204, 304):
            length = 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            length = None
        elif length is None:  # the body ends with the connection
            length = -1
            keep = False
        elif length.encode().isdigit():  # ASCII digits only: CPython's str.isdigit takes "²", int() not
            length = int(length)
        else:
            raise ProtocolError(msg(_W, 8) % self._where)
        if sink is not None:
            self._body(length, sink)
            body = None
        elif length is not None and 0 <= length <= limit:
            body = bytearray(length)  # kept as it is: a bytes copy would need the body's size twice
            self._exact(memoryview(body))
        else:
            collected = bytearray()

            def collect(piece):
                if MICROPYTHON:
                    # the garbage of reading (line and slice objects) freed first, so that the body can
                    # grow in place: moving it needs its old and new size at once, in one piece each
                    gc.collect()
                room = limit - len(collected)
                if len(piece) > room:
                    collected.extend(piece[:room])
                    raise self._too_big(limit)
                collected.extend(piece)
            try:
                self._body(length, collect)
            except ProtocolError:
                # An error answer over the limit (a proxy's HTML page for its 413 or 502) is cut there,
                # and the rest is not read: its status is the verdict (a 413 splits the batch); a
                # ProtocolError would have the batch sent again unchanged, and refused again.
                if status < 300 or len(collected) < limit:
                    raise
                keep = False
            body = collected
        if not keep or self._rpos != self._rend:  # closing, or more bytes than the response declared
            self.close()
        return Response(status, reason, headers, body)

    def _status_line(self):
        line = self._readline(20)
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3 or not parts[1].isdigit():
            raise ProtocolError(msg(_W, 9) % (self._where, line[:32]))
        try:
            reason = parts[2].decode() if len(parts) > 2 else ""
        except UnicodeError:  # obs-text (e.g. Latin-1) is allowed in a reason phrase: the status counts
            reason = ""
        return parts[0], int(parts[1]), reason

    def _headers(self):
        headers = {}
        name = None
        for _ in range(_MAX_HEADERS + 1):
            line = self._readline(22)
            if not line:
                return headers
            i = line.find(b":")
            fold = line[0] in (9, 32)  # obs-fold: more of the previous header's value (RFC 9112 5.2)
            if name is None if fold else i <= 0:
                raise ProtocolError(msg(_W, 10) % self._where)
            try:
                value = line[0 if fold else i + 1:].strip().decode()
                if fold:
                    headers[name] += " " + value
                    continue
                name = line[:i].strip().lower().decode()
            except UnicodeError:
                raise ProtocolError(msg(_W, 11) % self._where) from None
            if name in headers:
                headers[name] += ", " + value
            else:
                headers[name] = value
        raise ProtocolError(msg(_W, 12) % (self._where, _MAX_HEADERS))

    def _body(self, length, sink):
        """Pass the body to sink in memoryview slices of the read buffer.

        length: bytes of a Content-Length body, -1 for a body that ends with the connection, None
        for a chunked body.
        """
        if length is not None:
            self._pieces(length, sink)
            return
        while True:
            line = self._readline(24)
            size = line.split(b";", 1)[0].strip()
            if not size or len(size) > 8 or size.strip(_HEX):
                raise ProtocolError(msg(_W, 13) % self._where)
            size = int(size, 16)
            if size == 0:
                break
            self._pieces(size, sink)
            if self._readline(24, 26):
                raise ProtocolError(msg(_W, 14) % self._where)
        for _ in range(_MAX_HEADERS + 1):  # trailer fields, dropped
            if not self._readline(27):
                return
        raise ProtocolError(msg(_W, 15) % (self._where, _MAX_HEADERS))

    def _pieces(self, length, sink):
        """Pass length bytes (-1: up to EOF) through the read buffer to sink."""
        got = 0
        while got != length:
            if self._rpos == self._rend and not self._fill():
                if length < 0:
                    return
                raise self._cut(got, length)
            take = self._rend - self._rpos
            if length >= 0 and take > length - got:
                take = length - got
            sink(self._rmv[self._rpos:self._rpos + take])
            self._rpos += take
            got += take

    def _exact(self, view):
        """Fill view with body bytes: what is buffered first, then straight from the stream."""
        got = min(len(view), self._rend - self._rpos)
        view[:got] = self._rmv[self._rpos:self._rpos + got]
        self._rpos += got
        while got < len(view):
            n = self._stream.readinto(view[got:])
            if not n:
                raise self._cut(got, len(view))
            got += n

    def _too_big(self, limit):
        return ProtocolError(msg(_W, 16) % (self._where, limit))

    def _cut(self, got, length):
        return ConnectionClosed(msg(_W, 17) % (self._where, got, length))

    def _readline(self, when, what=None):
        """The next line without its CRLF, as bytes; at most MAX_LINE bytes. when, what: lines of _W for
        the errors (what: the line after when's if None)."""
        while True:
            i = self._rbuf.find(b"\n", self._rpos, self._rend)
            if i >= 0:
                end = i - 1 if i > self._rpos and self._rbuf[i - 1] == 13 else i
                if end - self._rpos > MAX_LINE:  # a bare LF after MAX_LINE + 1 bytes
                    break
                line = bytes(self._rmv[self._rpos:end])
                self._rpos = i + 1
                return line
            if self._rend - self._rpos >= _READ_BUF:
                break
            if self._rend == _READ_BUF:  # make room: move the partial line to the front
                n = self._rend - self._rpos
                self._rmv[:n] = self._rmv[self._rpos:self._rend]
                self._rpos, self._rend = 0, n
            if not self._fill():
                raise ConnectionClosed(msg(_W, 18) % (self._where, msg(_W, when)))
        raise ProtocolError(msg(_W, 19) % (self._where, msg(_W, when + 1 if what is None else what), MAX_LINE))

    def _fill(self):
        """Read more into the read buffer; False at EOF."""
        if self._rpos == self._rend:
            self._rpos = self._rend = 0
        n = self._stream.readinto(self._rmv[self._rend:])
        if not n:
            return False
        self._rend += n
        self._answered = True
        return True
