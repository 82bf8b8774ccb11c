# mockhub as a user-facing tool: the dashboard with real data (no secrets, no scripts, no CDN), its
# rendering in headless Chromium and the PNG screenshot command, and the CLI (--help, serve, Ctrl-C).
import json
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from fixtures_mockhub import AM, Agent, HubClient, dsc_doc, exchange_body, meta, ts_item

from tools.mockhub import screenshot

B = "BBBBBBBBBBBBBBBBBBBB"
CLI = [sys.executable, "-m", "tools.mockhub"]


def _populate(hub):
    a = Agent(hub, name="boiler-room")
    a.onboard()
    a.get_token()
    a.put_dsc(dsc_doc(), "0")
    items = [ts_item([("temp", "%.1f" % (20 + i % 5), "0"), ("hum", str(40 + i), "0")],
                     timestamp="2026-11-25T06:%02d:00.000Z" % i) for i in range(12)]
    items.append((meta("businessEvent"), "application/json", json.dumps([
        {"id": "e1", "timestamp": "2026-11-25T06:30:00.000Z", "severity": 1, "description": "pump stalled",
         "type": "Alarm", "version": "1.0", "details": {}}]).encode()))
    items.append((meta("file", details={"fileName": "trace.log"}), "application/octet-stream", b"log " * 100))
    items.append(ts_item([("ghost", "1", "0")]))
    assert a.exchange(exchange_body(items), B)[0] == 200
    a.client.request("POST", AM + "/register", b"{}", {"Content-Type": "application/json"}, token="bogus")
    return a


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.headers, r.read().decode()


def test_dashboard_shows_the_data_and_never_a_secret(mockhub):
    a = _populate(mockhub)
    status, headers, page = _get(mockhub.admin_url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert '<meta http-equiv="refresh" content="5">' in page
    assert page.count("<svg") == 2 and "aria-label=\"temp\"" in page and "aria-label=\"hum\"" in page
    assert "<polyline" in page and "temp (12)" in page
    for text in ("boiler-room", "pump stalled", "trace.log", "unknown dataPointId &#x27;ghost&#x27;",
                 "initial access token unknown", mockhub.agent_state(a.id)["secret_fingerprint"]):
        assert text in page, text
    for secret in (a.creds["client_secret"], a.creds["registration_access_token"], a.token, a.key["content"]["iat"]):
        assert secret not in page
    assert "<script" not in page and 'src="http' not in page and 'href="http' not in page


def test_dashboard_renders_in_headless_chromium_and_screenshots(mockhub, tmp_path):
    exe = screenshot.find_chromium()
    if exe is None:
        pytest.skip("Chromium not installed (Debian: apt-get install chromium); the dashboard test needs it")
    _populate(mockhub)
    dom = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=%s" % (tmp_path / "p"),
                          "--dump-dom", mockhub.admin_url + "/?refresh=3600"],
                         capture_output=True, text=True, timeout=60)
    assert dom.returncode == 0, dom.stderr[-500:]
    assert "<polyline" in dom.stdout and "pump stalled" in dom.stdout
    out = tmp_path / "dashboard.png"
    proc = subprocess.run(CLI + ["screenshot", str(out), "--width", "1000", "--height", "900",
                                 "--admin", mockhub.admin_url], capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1000, 900)
    assert len(data) > 20000  # a rendered page with charts, not a blank image


def test_help_explains_every_option():
    out = subprocess.run(CLI + ["--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for cmd in ("serve", "create-agent", "agents", "reset-agent", "expire-token", "fault", "clear-faults",
                "counters", "clock", "skew", "screenshot"):
        assert cmd in out.stdout
    out = subprocess.run(CLI + ["serve", "--help"], capture_output=True, text=True, timeout=60)
    for opt in ("--state", "--port", "--admin-port", "--strict", "--tenant", "--max-body", "--previous-secret-valid"):
        assert opt in out.stdout


class _Lines:
    """Lines of a child's output, read by a thread, so waiting for one has a deadline."""

    def __init__(self, stream):
        self.queue = queue.Queue()
        self.seen = ""
        self.thread = threading.Thread(target=lambda: [self.queue.put(line) for line in iter(stream.readline, "")],
                                       daemon=True)
        self.thread.start()

    def until(self, needle, deadline_s=30):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            try:
                line = self.queue.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            self.seen += line
            if needle in line:
                return line
        raise AssertionError("no %r from the hub within %d s; output:\n%s" % (needle, deadline_s, self.seen))

    def all(self, deadline_s=30):
        """Everything, once the stream has ended (call after the process exited)."""
        self.thread.join(deadline_s)
        while not self.queue.empty():
            self.seen += self.queue.get()
        return self.seen


def test_serve_create_agent_onboard_and_ctrl_c(tmp_path):
    state = tmp_path / "state"
    proc = subprocess.Popen(CLI + ["--state", str(state), "--port", "0", "--admin-port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        lines, err_lines = _Lines(proc.stdout), _Lines(proc.stderr)
        api = lines.until("agent API").split()[3]
        admin = lines.until("dashboard + admin").split()[3].rstrip("/")
        made = subprocess.run(CLI + ["create-agent", "--name", "cli-node", "--secret-lifetime", "90000",
                                     "--admin", admin], capture_output=True, text=True, timeout=60)
        key = json.loads(made.stdout)
        assert key["content"]["baseUrl"] == api and (state / "tls" / "ca.der").exists()
        assert (state / "tls" / "ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")

        class Hub:  # what HubClient needs of a hub
            port = int(api.rsplit(":", 1)[1])
            ca_pem_path = state / "tls" / "ca.pem"

        client = HubClient(Hub)
        status, creds = client.json("POST", AM + "/register", {}, token=key["content"]["iat"])
        assert status == 201 and creds["client_secret_expires_at"] - time.time() > 89000
        listed = subprocess.run(CLI + ["agents", "--admin", admin], capture_output=True, text=True, timeout=60)
        assert json.loads(listed.stdout)[0]["onboarded"] is True
        client.close()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        out, err = lines.all(), err_lines.all()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "mockhub stopped" in out and "Traceback" not in err
    assert "POST /api/agentmanagement/v3/register -> 201" in err
    for secret in (creds["client_secret"], creds["registration_access_token"], key["content"]["iat"]):
        assert secret not in out + err
    assert (state / "mockhub.sqlite3").exists()
