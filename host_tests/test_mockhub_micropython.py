# The hub's certificate as the device sees it: the MicroPython unix port (mbedtls `tls` module, CA as
# DER, -X heapsize=64K) verifies it for "localhost", reuses one connection for two requests, and
# refuses the wrong-host certificate fault.
import time

import pytest

PROBE = r'''
import os
import socket
import tls


def get_twice(path):
    with open(os.getenv("MOCKHUB_CA_DER"), "rb") as f:
        ca = f.read()
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = tls.CERT_REQUIRED
    ctx.load_verify_locations(ca)
    ai = socket.getaddrinfo(os.getenv("MOCKHUB_HOST"), int(os.getenv("MOCKHUB_PORT")))[0]
    s = socket.socket(ai[0], ai[1], ai[2])
    s.connect(ai[-1])
    s = ctx.wrap_socket(s, server_hostname=os.getenv("MOCKHUB_HOST"))
    for _ in range(2):
        s.write(b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status = s.readline()
        n = 0
        while True:
            line = s.readline()
            if line == b"\r\n":
                break
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        body = s.read(n)
        print("STATUS", status[9:12].decode(), len(body))
    s.close()


try:
    get_twice(b"/api/agentmanagement/v3/oauth/token_key")
except Exception as e:
    print("ERROR", type(e).__name__, e)
'''


@pytest.fixture
def probe(mpy, mockhub_env):
    def run():
        proc = mpy.run_code(PROBE, name="mockhub_probe", timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout
    return run


def test_micropython_verifies_the_hub_and_keeps_the_connection(mockhub_env, probe):
    out = probe()
    assert out.count("STATUS 200") == 2, out
    c = mockhub_env.counters()
    assert c["handshakes"] == 1 and c["requests_per_connection"] == [2]


def test_micropython_refuses_the_wrong_host_certificate(mockhub_env, probe):
    mockhub_env.fault(None, "tls", wrong_host=True)
    out = probe()
    assert "ERROR" in out and "CN" in out, out
    # the hub's thread counts the failed handshake once it sees the client's alert or close, which can
    # come after the client has printed its error: poll with a deadline
    deadline = time.monotonic() + 10
    while mockhub_env.counters()["handshake_failures"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mockhub_env.counters()["handshake_failures"] == 1
