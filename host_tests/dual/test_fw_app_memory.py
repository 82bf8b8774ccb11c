# The whole app's memory on MicroPython in device form: firmware/app.py on the simulated board runs its
# cycles (boot-time config check, sampling, onboarding, token, data model, three uploads with
# telemetry and an event) against the mock hub over real TLS, with lib/ and firmware/ executed in place
# from a ROMFS image as on a board (frozen or ROMFS; see host_tests/mpyharness.py). The heap it may use
# is MPY_HEAPSIZE: the process is started with that plus the image, and the image takes exactly its own
# blocks, so the app gets the usable heap of a plain -X heapsize=MPY_HEAPSIZE process.
# What the hub stored is checked by streaming the admin answers (counting as they pass), so the check
# itself does not need the heap of a parsed list of rows.
import json

import dualtest
from firmware import app as appmod
from firmware import config
from firmware.boards import sim
from mindconnect.http import HTTPClient
from mindconnect.transport import Transport

HOST_FIXTURES = ("mockhub_env",)
MPY_DEVICE_FORM = "rom"
# Measured minimum (104K passes; 103K fails 1-2 runs in 3: the first token answer or onboarding) + 4 KB:
# a full run has longer tmp paths; the goal is 96K. What is alive: docs/APP.md, "Memory".
MPY_HEAPSIZE = "108K"
appmod.App.follow_gateway_clock = False  # the board on FakeTime, the hub on real time (see test_fw_app.py)


def admin(method, path, doc=None, sink=None):
    url = dualtest.env("MOCKHUB_ADMIN_URL")
    c = HTTPClient(Transport(tls=False).connect, "127.0.0.1", int(url.rsplit(":", 1)[1]), max_body=4096)
    try:
        r = c.request(method, path, {"Content-Type": "application/json"} if doc is not None else None,
                      json.dumps(doc) if doc is not None else None, sink=sink)
    finally:
        c.close()
    if r.status >= 300:
        raise AssertionError("admin %s %s: %d" % (method, path, r.status))
    return None if sink else r.json()


def count(path, needle):
    """How often needle occurs in the admin answer at path (counted piece by piece, across piece ends)."""
    seen = [0, b""]

    def sink(piece):
        text = seen[1] + bytes(piece)
        seen[0] += text.count(needle)
        seen[1] = text[1 - len(needle):]  # shorter than needle: nothing in it is counted twice

    admin("GET", path, sink=sink)
    return seen[0]


class FakeTime:
    def __init__(self):
        import time
        self.now = int(time.time()) * 1000

    def clock(self):
        return self.now

    def sleep(self, ms):
        self.now += ms


def test_app_cycles_fit_the_heap_in_device_form():
    created = admin("POST", "/admin/agents", {})
    cid = created["client_id"]
    key = created["onboarding_key"]
    created = None
    flash = dualtest.tmpdir() + "/flash"
    t = FakeTime()
    board = sim.SimBoard(flash, t.clock, t.sleep, sim.SimState())
    cfg = {"sensors": [{"type": "sim", "name": "room", "points": [
        {"id": "t", "name": "Temperature", "unit": "C"}, {"id": "h", "quantity": "humidity", "unit": "%"}]}],
        "sample_s": 10, "upload_s": 60, "safe_pin": None, "log_level": "warning",
        "rules": [{"point": "t", "above": 0, "severity": 1}], "spool": {"flush_every": 1}}
    dualtest.write_bytes(flash + "/config.json", json.dumps(cfg).encode())
    dualtest.write_bytes(flash + "/secrets.json", json.dumps({"onboarding_key": key}).encode())
    dualtest.write_bytes(flash + "/ca.der", dualtest.read_bytes(dualtest.env("MOCKHUB_CA_DER")))
    cfg = key = None
    a = appmod.App(board, config.load(flash), log=lambda m: None)
    end = t.now + 125000  # 13 samples, uploads at 0, 60 s and 120 s
    while t.now < end:
        a.wait(min(a.step(), end - t.now))
    a.close()
    assert a.samples == 13 and a.uploads == 3 and a.upload_failures == 0, (a.samples, a.uploads)
    assert a.readings.pending() == 0 and a.events.pending() == 0
    a = board = None
    rows = "/admin/agents/%s/timeseries" % cid
    assert count(rows, b'"t"') == 13 and count(rows, b'"node_uptime"') == 3
    assert count("/admin/agents/%s/events" % cid, b'"description"') == 1
