# mockhub faults: each kind injected (Python API, admin API, CLI) and observed by a raw TLS client;
# counters of connections, handshakes and requests per connection.
import email.utils
import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest
from fixtures_mockhub import AM, MC, Agent, dsc_doc, exchange_body, tls_context, token_form, ts_item

from tools.mockhub.hub import MockHub

B = "BBBBBBBBBBBBBBBBBBBB"


@pytest.fixture
def agent(mockhub):
    a = Agent(mockhub)
    a.onboard()
    a.get_token()
    a.put_dsc(dsc_doc(), "0")
    return a


def raw_request(hub, method, path, body=b"", headers=(), timeout=10):
    """Send one request on a fresh TLS connection; return (bytes received until EOF, send error or None)."""
    sock = socket.create_connection(("127.0.0.1", hub.port), timeout=timeout)
    tls = tls_context(hub).wrap_socket(sock, server_hostname="localhost")
    head = "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n" % (method, path, len(body))
    head += "".join("%s: %s\r\n" % h for h in headers) + "\r\n"
    send_error = None
    try:
        tls.sendall(head.encode() + body)
    except OSError as e:
        send_error = e
    got = b""
    try:
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                break
            got += chunk
            if b"\r\n\r\n" in got and b"connection: close" not in got.lower():
                head_, _, rest = got.partition(b"\r\n\r\n")
                length = int([h.split(b":")[1] for h in head_.split(b"\r\n")
                              if h.lower().startswith(b"content-length")][0])
                if len(rest) >= length:
                    break
    except OSError as e:
        send_error = send_error or e
    tls.close()
    return got, send_error


def _exchange_request(a, body):
    return ("POST", MC + "/exchange", body, (("Authorization", "Bearer " + a.token),
                                              ("Content-Type", "multipart/mixed; boundary=" + B)))


@pytest.mark.parametrize("status", [401, 403, 500, 503])
def test_status_faults_hit_only_their_agent_and_endpoint(mockhub, agent, status):
    other = Agent(mockhub, client=agent.client)
    other.onboard()
    other.get_token()
    other.put_dsc(dsc_doc(), "0")
    mockhub.fault(agent.id, "exchange", status=status, count=2)
    body = exchange_body([ts_item([("temp", "1", "0")])])
    assert other.exchange(body, B)[0] == 200
    assert agent.client.request("GET", AM + "/agents/%s/dataSourceConfiguration" % agent.id, token=agent.token)[0] \
        == 200
    for _ in range(2):
        got, _ = raw_request(mockhub, *_exchange_request(agent, body))
        assert got.startswith(b"HTTP/1.1 %d " % status) and b'"message":"injected fault' in got
    assert agent.exchange(body, B)[0] == 200  # count used up
    assert mockhub.faults.list() == []


def test_remove_one_fault_keeps_the_others(mockhub, agent):
    outage = mockhub.fault(None, "*", status=503, count=None)  # until removed, as an outage is
    burst = mockhub.fault(agent.id, "exchange", status=429, retry_after=5, count=1)
    body = exchange_body([ts_item([("temp", "1", "0")])])
    assert agent.exchange(body, B)[0] == 503
    mockhub.remove_fault(outage)
    mockhub.remove_fault(outage)  # already gone: fine
    assert mockhub.faults.list() == [burst.to_dict()]
    assert agent.exchange(body, B)[0] == 429
    assert agent.exchange(body, B)[0] == 200


def test_429_with_retry_after_on_the_token_endpoint(mockhub, agent):
    mockhub.fault(agent.id, "token", status=429, retry_after=17)
    got, _ = raw_request(mockhub, "POST", AM + "/oauth/token", token_form(agent.assertion()),
                         (("Content-Type", "application/x-www-form-urlencoded"),))
    head = got.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 429 ") and "Retry-After: 17" in head
    assert json.loads(got.split(b"\r\n\r\n", 1)[1])["error"] == "injected_fault"
    assert agent.get_token()[0] == 200


def test_drop_after_request_bytes_cuts_a_big_upload(mockhub, agent):
    mockhub.fault(agent.id, "exchange", drop_after_request_bytes=2000)
    content = b"x" * (4 * 1024 * 1024)
    body = exchange_body([({"type": "item", "version": "1.0", "payload": {"type": "file", "version": "1.0",
                                                                           "details": {"fileName": "f"}}},
                           "application/octet-stream", content)])
    got, err = raw_request(mockhub, *_exchange_request(agent, body))
    assert got == b"" and isinstance(err, OSError), err  # reset while sending, or on the read after it
    assert mockhub.files(agent.id) == []
    # a small request: closed without any answer
    mockhub.fault(None, "token", drop_after_request_bytes=10)
    got, _ = raw_request(mockhub, "POST", AM + "/oauth/token", token_form(agent.assertion()),
                         (("Content-Type", "application/x-www-form-urlencoded"),))
    assert got == b""


def test_response_faults_drop_truncate_garble(mockhub, agent):
    mockhub.fault(agent.id, "dsc", drop_after_response_bytes=20)
    path = AM + "/agents/%s/dataSourceConfiguration" % agent.id
    auth = (("Authorization", "Bearer " + agent.token),)
    got, _ = raw_request(mockhub, "GET", path, headers=auth)
    assert got == b"HTTP/1.1 200 OK\r\nDat"
    mockhub.fault(agent.id, "dsc", truncate=True)
    got, _ = raw_request(mockhub, "GET", path, headers=auth)
    head, _, body = got.partition(b"\r\n\r\n")
    length = int([h for h in head.split(b"\r\n") if h.startswith(b"Content-Length")][0].split(b":")[1])
    assert b"Connection: close" in head and 0 < len(body) < length
    mockhub.fault(agent.id, "dsc", garble=True)
    got, _ = raw_request(mockhub, "GET", path, headers=auth)
    assert got and not got.startswith(b"HTTP/1.")
    got, _ = raw_request(mockhub, "GET", path, headers=auth)
    assert got.startswith(b"HTTP/1.1 200 OK")


def test_delay_makes_a_short_client_timeout_expire(mockhub, agent):
    mockhub.fault(agent.id, "token_key", delay_s=3)
    with pytest.raises((socket.timeout, TimeoutError)):
        sock = socket.create_connection(("127.0.0.1", mockhub.port), timeout=5)
        tls = tls_context(mockhub).wrap_socket(sock, server_hostname="localhost")
        tls.settimeout(0.3)
        tls.sendall(b"GET %s/oauth/token_key HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n\r\n"
                    % (AM.encode(), agent.token.encode()))
        tls.recv(100)


def test_skewed_date_and_server_time(mockhub, agent):
    t = int(mockhub.now())
    mockhub.set_clock(t)
    mockhub.skew(3600)
    status, headers, _ = agent.get_token()
    assert status == 200 and headers["server-time"] == str(t + 3600)
    assert headers["date"] == email.utils.formatdate(t + 3600, usegmt=True)
    mockhub.skew(0)
    mockhub.fault(agent.id, "token", skew_s=-120)
    assert agent.get_token()[1]["server-time"] == str(t - 120)
    assert agent.get_token()[1]["server-time"] == str(t)


def test_wrong_host_certificate_at_the_next_handshake(mockhub, agent):
    mockhub.fault(None, "tls", wrong_host=True)
    sock = socket.create_connection(("127.0.0.1", mockhub.port), timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError, match="[Hh]ostname"):
        tls_context(mockhub).wrap_socket(sock, server_hostname="localhost")
    sock.close()
    got, _ = raw_request(mockhub, "GET", AM + "/oauth/token_key")
    assert got.startswith(b"HTTP/1.1 200")
    deadline = time.monotonic() + 10  # the failed handshake is counted by its own server thread
    while mockhub.counters()["handshake_failures"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mockhub.counters()["handshake_failures"] == 1


def test_expire_token_now_through_the_admin_api(mockhub, agent):
    req = urllib.request.Request(mockhub.admin_url + "/admin/agents/%s/expire-token" % agent.id, method="POST")
    with urllib.request.urlopen(req) as r:
        assert r.status == 200
    assert agent.exchange(exchange_body([ts_item([("temp", "1", "0")])]), B)[0] == 401


def test_counters_show_keep_alive_and_new_connections(mockhub, agent):
    mockhub.reset_counters()
    for _ in range(3):
        agent.exchange(exchange_body([ts_item([("temp", "1", "0")])]), B)
    for _ in range(2):
        raw_request(mockhub, "GET", AM + "/oauth/token_key", headers=(("Connection", "close"),))
    c = mockhub.counters()
    assert c["requests_per_connection"] == [2, 1] or c["requests_per_connection"][-2:] == [1, 1]
    assert c["connections"] == 2 and c["handshakes"] == 2 and c["requests"] == 5
    assert c["endpoints"] == {"exchange": 3, "token_key": 2}


def test_faults_from_the_admin_api_and_the_cli(mockhub, agent):
    body = json.dumps({"client_id": agent.id, "endpoint": "exchange", "status": 503, "retry_after": 5}).encode()
    req = urllib.request.Request(mockhub.admin_url + "/admin/faults", data=body, method="POST")
    with urllib.request.urlopen(req) as r:
        assert r.status == 201 and json.loads(r.read())["status"] == 503
    status, headers, _ = agent.exchange(exchange_body([ts_item([("temp", "1", "0")])]), B)
    assert status == 503 and headers["retry-after"] == "5"
    cli = [sys.executable, "-m", "tools.mockhub"]
    out = subprocess.run(cli + ["fault", "exchange", "--agent", agent.id, "--status", "403", "--count", "0",
                                "--admin", mockhub.admin_url], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for _ in range(2):
        assert agent.exchange(exchange_body([ts_item([("temp", "1", "0")])]), B)[0] == 403
    out = subprocess.run(cli + ["clear-faults", "--admin", mockhub.admin_url], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and mockhub.faults.list() == []
    assert agent.exchange(exchange_body([ts_item([("temp", "1", "0")])]), B)[0] == 200
    bad = subprocess.run(cli + ["fault", "nowhere", "--admin", mockhub.admin_url], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0 and "unknown endpoint" in bad.stderr


def test_state_dir_is_usable_by_a_second_hub_instance(tmp_path):
    with MockHub(tmp_path / "s") as hub:
        cid = hub.create_agent(name="n")["client_id"]
    with MockHub(tmp_path / "s") as hub:
        assert [a["name"] for a in hub.agents()] == ["n"] and hub.agent_state(cid)["onboarded"] is False
