"""HTTP CONNECT through a proxy, for transport.Transport: loaded by the first connection through a proxy,
so that nodes without one do not keep this code in the heap."""

import binascii

from mindconnect.compat import const
from mindconnect.errors import ConnectionClosed, NetworkError
from mindconnect.transport import Stream

_PROXY_REPLY_MAX = const(1024)


def tunnel(sock, host, port, timeout_ms, proxy_addr):
    """Ask the proxy (proxy_addr: host, port[, user, password]) on sock for a tunnel to host:port (HTTP
    CONNECT); raise unless it says 2xx."""
    proxy = "%s:%d" % (proxy_addr[0], proxy_addr[1])
    target = "%s:%d" % (host, port)
    req = "CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (target, target)
    if len(proxy_addr) == 4:
        cred = ("%s:%s" % (proxy_addr[2], proxy_addr[3])).encode()
        req += "Proxy-Authorization: Basic %s\r\n" % binascii.b2a_base64(cred).strip().decode()
    stream = Stream(sock, "proxy " + proxy, timeout_ms)
    stream.write((req + "\r\n").encode())
    reply = _reply(stream, proxy)
    parts = reply.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise NetworkError("proxy %s gave no HTTP answer to CONNECT: check the proxy address" % proxy)
    status = int(parts[1])
    if not 200 <= status < 300:
        try:
            reason = parts[2].decode() if len(parts) > 2 else ""
        except UnicodeError:  # obs-text (e.g. Latin-1) is allowed in a reason phrase
            reason = ""
        hint = ": check the proxy user and password" if status == 407 else ""
        raise NetworkError("proxy %s refused the tunnel to %s with %d %s%s"
                           % (proxy, target, status, reason.strip(), hint), status)


def _reply(stream, proxy):
    """The proxy's status line; the rest of its header is read and dropped.

    Read one byte at a time so that nothing after the blank line (the tunnel's first TLS bytes)
    is consumed: this happens once per connection and the reply is short.
    """
    one = bytearray(1)
    line = bytearray()
    status_line = None
    total = 0
    while True:
        if not stream.readinto(one):
            raise ConnectionClosed("proxy %s closed the connection during CONNECT" % proxy)
        total += 1
        if total > _PROXY_REPLY_MAX:
            raise NetworkError("proxy %s sent an overlong CONNECT reply" % proxy)
        if one[0] != 10:
            line.append(one[0])
            continue
        if line.endswith(b"\r"):
            line = line[:-1]
        if status_line is None:
            status_line = bytes(line)
        elif not line:
            return status_line
        line = bytearray()
