"""TCP connections with verified TLS, directly or through an HTTP CONNECT proxy.

The only module that touches socket, ssl and tls (mindconnect.proxy, loaded for a proxy only, speaks
CONNECT over its Stream). Transport(...).connect is the stream factory that
http.HTTPClient takes: connect(host, port, timeout_ms) -> Stream with write, readinto and close.
Every socket and TLS failure comes out as errors.NetworkError, errors.TLSError (certificate, host
name or handshake) or errors.ConnectionClosed (reset or closed by the peer).

Facts found by experiment on the MicroPython unix port (1.29, mbedtls), kept here because they shape
the code (ESP32 uses the same extmod tls module):
- settimeout() on the TCP socket also bounds connect, the TLS handshake and every read and write of
  the wrapped socket: they raise OSError(ETIMEDOUT) when it expires.
- SSLContext.load_verify_locations takes the DER CA positionally (bytes, not a memoryview); cadata=
  raises TypeError. One call loads the first certificate of concatenated DER and ignores the rest;
  calls add up (CPython's cadata takes concatenated DER whole).
- wrap_socket(..., server_hostname=h) handshakes before returning. A certificate that does not
  chain to the CA, or does not name h (CN or SAN, IP addresses included), raises ValueError with
  mbedtls' text; other handshake failures raise OSError with a negative mbedtls code (e.g. -29184
  when the peer does not speak TLS) or a plain errno (ECONNRESET when it hangs up).
- readinto (and recv_into) on a blocking socket with a timeout wait to fill the whole buffer and
  raise ETIMEDOUT even when part of it arrived: hence non-blocking reads with poll (see Stream).
- readinto returns 0 at EOF, after a close_notify and after a bare FIN alike; a reset raises
  OSError(ECONNRESET). Writing to a closed socket raises OSError(EPIPE) (SIGPIPE is ignored).
- Plain sockets have readinto but no recv_into; CPython sockets have recv_into but no readinto.
"""

import gc
import socket
from errno import EAGAIN, ECONNABORTED, ECONNREFUSED, ECONNRESET, ENOTCONN, ETIMEDOUT

from mindconnect.compat import MICROPYTHON, const
from mindconnect.errors import ConfigError, ConnectionClosed, NetworkError, TLSError, msg

_EPIPE = const(32)  # missing from MicroPython's errno module; 32 on Linux and in ESP-IDF's newlib alike
# _SSL_EOF: CPython's ssl.SSLEOFError (errno ssl.SSL_ERROR_EOF), a peer that closed under TLS; no socket
# gives errno 8 (ENOEXEC) otherwise. A check of its own here moved the cycle test's heap over its cap.
_SSL_EOF = const(8)
_CLOSED_ERRNOS = (ECONNRESET, _EPIPE, ECONNABORTED, ENOTCONN, _SSL_EOF)
# The wording of every error, one line each, taken by msg(_W, line): one str constant instead of 14 (in
# ROM form each str constant over 10 characters is an object of about 40 B in the heap; docs/AGENT.md).
_W = ("the CA file is not DER certificates (byte %d); convert a PEM file with openssl x509 -outform der\n"  # 0
      "TLS handshake with %s timed out\n"
      "TLS handshake with %s failed (%s): check that the CA file is the one that signed the server's "
      "certificate and that the host name is the one in it\n"
      "timed out %s %s (nothing for %d ms)\n"
      "connection %s %s was reset or closed by the peer\n"
      "TLS error %s %s: %s\n"  # 5
      "TLS error %s %s (mbedtls %d)\n"
      "network error %s %s: %s\n"
      "TLS needs the gateway's CA certificate as DER bytes (ca_der): provision the CA file\n"
      "proxy must be (host, port) or (host, port, user, password)\n"
      "cannot resolve %s: check the host name and the network's DNS\n"  # 10
      "no connection to %s within %d ms\n"
      "connection to %s refused: check the host and port\n"
      "cannot connect to %s: %s\n"
      "sending to\n"
      "reading from")  # 15


def _is_timeout(e):
    if e.errno in (ETIMEDOUT, EAGAIN):
        return True
    return not MICROPYTHON and isinstance(e, socket.timeout)


def _der_certs(ca_der):
    """(start, end) of each DER certificate in ca_der: a CA file may hold several one after the other
    (e.g. the gateway's root and the one announced to replace it); ValueError if it is not DER."""
    out = []
    i, end = 0, len(ca_der)
    while i < end:
        n = ca_der[i + 1] if i + 1 < end else 0
        head = 2
        if n & 0x80:
            head += n & 0x7F
            n = int.from_bytes(ca_der[i + 2:i + head], "big")
        if ca_der[i] != 0x30 or head > 6 or i + head + n > end:
            raise ValueError(msg(_W, 0) % i)
        out.append((i, i + head + n))
        i += head + n
    return out


def _tls_context(ca_der):
    """A client context that requires a certificate chaining to one in ca_der and naming the host."""
    certs = _der_certs(ca_der)
    if MICROPYTHON:
        import tls
        ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = tls.CERT_REQUIRED
        for start, end in certs:  # one call loads one DER certificate (the rest would be ignored)
            ctx.load_verify_locations(ca_der[start:end])
        return ctx
    import ssl
    ctx = ssl.create_default_context(cadata=ca_der)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    return ctx


def _tls_error(e, where):
    """The error for a failed handshake: TLSError, except a timeout (a slow network, not a TLS fault)."""
    if isinstance(e, OSError) and _is_timeout(e):
        return NetworkError(msg(_W, 1) % where)
    # CPython names the fault in verify_message or reason; MicroPython's ValueError carries mbedtls' text.
    detail = getattr(e, "verify_message", None) or getattr(e, "reason", None) or str(e).strip()
    return TLSError(msg(_W, 2) % (where, detail))


class Stream:
    """A connected (TLS) socket: write everything, readinto, close; failures as errors.py classes.

    On MicroPython the socket is switched to non-blocking and every wait goes through poll with the
    timeout: a blocking readinto there does not return what has arrived but waits to fill the whole
    buffer ("no short reads") and then raises ETIMEDOUT. Non-blocking, readinto returns what is
    there, None when nothing is (also after a TLS record without data, e.g. a session ticket), 0 at EOF.
    """

    on_io = None  # called after every write and read that moved bytes (a watchdog's feed)

    def __init__(self, sock, where, timeout_ms, on_io=None):
        self.sock = sock
        self.where = where
        self.timeout_ms = timeout_ms
        if on_io is not None:
            self.on_io = on_io
        if MICROPYTHON:
            import select
            sock.setblocking(False)
            self._readable = select.poll()
            self._readable.register(sock, select.POLLIN)
            self._writable = select.poll()
            self._writable.register(sock, select.POLLOUT)

    def write(self, buf):
        try:
            if not MICROPYTHON:
                self.sock.sendall(buf)
            else:
                n = self.sock.write(buf)
                while n is None or n < len(buf):
                    if n:
                        buf = memoryview(buf)[n:]
                    if not self._writable.poll(self.timeout_ms):
                        raise OSError(ETIMEDOUT)
                    n = self.sock.write(buf)
        except OSError as e:
            raise self._error(e, 14) from None
        if self.on_io is not None:
            self.on_io()

    def readinto(self, buf):
        """Bytes read into buf (at least 1), or 0 at EOF."""
        try:
            if not MICROPYTHON:
                n = self.sock.recv_into(buf)
            else:
                n = self.sock.readinto(buf)
                while n is None:
                    if not self._readable.poll(self.timeout_ms):
                        raise OSError(ETIMEDOUT)
                    n = self.sock.readinto(buf)
        except OSError as e:
            raise self._error(e, 15) from None
        if n and self.on_io is not None:
            self.on_io()
        return n

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _error(self, e, doing):
        doing = msg(_W, doing)
        if _is_timeout(e):
            return NetworkError(msg(_W, 3) % (doing, self.where, self.timeout_ms))
        if e.errno in _CLOSED_ERRNOS:
            return ConnectionClosed(msg(_W, 4) % (doing, self.where))
        if not MICROPYTHON:
            import ssl
            if isinstance(e, ssl.SSLError):
                return TLSError(msg(_W, 5) % (doing, self.where, e.reason or e))
        elif e.errno is not None and e.errno < 0:
            return TLSError(msg(_W, 6) % (doing, self.where, e.errno))
        return NetworkError(msg(_W, 7) % (doing, self.where, e))


class Transport:
    """Opens streams to host:port: TCP, then TLS verified against ca_der (DER bytes), optionally
    through an HTTP CONNECT proxy given as (host, port) or (host, port, user, password).

    tls=False gives plain TCP (tests and local tools only; the gateway is always TLS). on_io, when
    given, is called after every write and read that moved bytes: a watchdog fed there lets a long
    upload run while it progresses and still fires when a connection hangs.
    Counters: .connects (TCP connections made) and .handshakes (TLS handshakes completed).
    """

    def __init__(self, ca_der=None, proxy=None, tls=True, on_io=None):
        if tls and not ca_der:
            raise ConfigError(msg(_W, 8))
        if proxy is not None and len(proxy) not in (2, 4):
            raise ConfigError(msg(_W, 9))
        self.ca_der = ca_der
        self.proxy = proxy
        self.tls = tls
        self.on_io = on_io  # given to every stream: called after each write or read that moved bytes
        self.connects = 0
        self.handshakes = 0
        self._ctx = None
        if tls:
            # The context (3 KB in one piece on MicroPython) lives as long as the transport: made here,
            # after a collection, it takes the lowest free room, not a place above the garbage of what
            # ran before, where it would split the heap for good (backlog test: 87K -> 82K).
            gc.collect()
            try:
                self._ctx = _tls_context(ca_der)
            except (OSError, ValueError):
                self._ctx = None  # a CA that does not load: connect() tries again and raises TLSError

    def connect(self, host, port, timeout_ms):
        where = "%s:%d" % (host, port)
        if self.proxy:
            sock = self._tcp(self.proxy[0], self.proxy[1], timeout_ms)
            try:
                from mindconnect.proxy import tunnel
                tunnel(sock, host, port, timeout_ms, self.proxy)
                sock.settimeout(timeout_ms / 1000)  # blocking again for the handshake (Stream made it not)
            except BaseException:
                sock.close()
                raise
        else:
            sock = self._tcp(host, port, timeout_ms)
        if not self.tls:
            return Stream(sock, where, timeout_ms, self.on_io)
        try:
            if self._ctx is None:
                self._ctx = _tls_context(self.ca_der)
            # server_hostname always set: it is what the certificate's name is checked against.
            sock = self._ctx.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=True)
        except (OSError, ValueError) as e:
            sock.close()
            raise _tls_error(e, where) from None
        self.handshakes += 1
        return Stream(sock, where, timeout_ms, self.on_io)

    def _tcp(self, host, port, timeout_ms):
        where = "%s:%d" % (host, port)
        try:
            ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
        except (OSError, IndexError):
            raise NetworkError(msg(_W, 10) % host) from None
        sock = socket.socket(ai[0], socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout_ms / 1000)
            sock.connect(ai[-1])
        except OSError as e:
            sock.close()
            if _is_timeout(e):
                raise NetworkError(msg(_W, 11) % (where, timeout_ms)) from None
            if e.errno == ECONNREFUSED:
                raise NetworkError(msg(_W, 12) % where) from None
            raise NetworkError(msg(_W, 13) % (where, e)) from None
        self.connects += 1
        return sock
