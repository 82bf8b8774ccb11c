# The node as a board runs it: boot.py + main.py under the MicroPython unix port (compiled .mpy, the
# app's heap cap) against the mock hub on 127.0.0.1. SIGKILL mid-cycle, restart on the same flash: every
# reading the node logged as spooled (flushed: flush_every 1) reaches the hub. Then an outage (503 until
# cleared) is ridden out with nothing lost.
import datetime
import json
import os
import signal
import subprocess
import threading
import time

import mpyharness
import pytest

from tools import demo
from tools.mockhub import MockHub


@pytest.fixture
def hub(tmp_path):
    h = MockHub(tmp_path / "hub").start()
    yield h
    h.stop()


class Node:
    """A MicroPython process running boot.py and main.py on a flash folder; its log lines collected."""

    def __init__(self, flash):
        self.lines = []
        self.proc = mpyharness.popen(["-c", "import boot\nimport main"], heap=demo.HEAPSIZE,
                                     env={"MC_FLASH_DIR": str(flash), "MC_BOARD": "sim"}, cwd=str(flash.parent),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            self.lines.append(line.decode("utf-8", "replace").rstrip())

    def spooled(self):
        """Timestamps of the readings the node logged after appending them to the spool."""
        return [int(x.split()[-1]) for x in list(self.lines) if x.startswith("debug: reading ")]

    def wait_for(self, what, timeout=30):
        deadline = time.monotonic() + timeout
        while not what():
            assert self.proc.poll() is None, "node exited:\n" + "\n".join(self.lines)
            assert time.monotonic() < deadline, "timed out; node log:\n" + "\n".join(self.lines)
            time.sleep(0.05)  # polling with a deadline

    def kill(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.reader.join(5)


def make_flash(tmp_path, hub):
    flash = tmp_path / "flash"
    flash.mkdir()
    cfg = {"board": "sim", "safe_pin": None, "sample_s": 1, "upload_s": 3, "log_level": "debug",
           "spool": {"flush_every": 1}, "sensors": [{"type": "sim", "points": [{"id": "t"}]}]}
    (flash / "config.json").write_text(json.dumps(cfg))
    (flash / "ca.der").write_bytes(hub.ca_der)
    created = hub.create_agent(name="restart")
    (flash / "secrets.json").write_text(json.dumps({"onboarding_key": created["onboarding_key"]}))
    return flash, created["client_id"]


def hub_stamps(hub, cid):
    """Unix ms of every reading of point t the hub stored (it keeps the ISO 8601 text)."""
    out = set()
    for ts, point, _, _ in hub.timeseries(cid):
        if point == "t":
            d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
            out.add(int(d.timestamp()) * 1000 + d.microsecond // 1000)
    return out


def test_sigkill_mid_cycle_and_an_outage_lose_no_reading(hub, tmp_path):
    mpyharness.require_micropython()
    flash, cid = make_flash(tmp_path, hub)
    node = Node(flash)
    node.wait_for(lambda: len(node.spooled()) >= 5 and hub_stamps(hub, cid))
    node.kill()  # wherever it was: sampling, uploading, or waiting
    taken = node.spooled()
    node = Node(flash)
    node.wait_for(lambda: set(taken) <= hub_stamps(hub, cid))
    hub.fault(None, "exchange", status=503, count=None)
    node.wait_for(lambda: sum("upload failed" in x for x in node.lines) >= 2)
    hub.clear_faults()
    during = node.spooled()
    node.wait_for(lambda: set(during) <= hub_stamps(hub, cid))
    node.kill()
    assert len(taken) >= 5 and len(during) > len(taken)
