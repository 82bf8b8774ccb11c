# Field robustness of firmware/app.py (both runtimes): the failures a node meets unattended must not
# stop its sampling until someone visits it. The simulated board on a fake clock against the mock hub
# over real TLS, as test_fw_app.py.
import json

from test_fw_app import FakeTime, admin, node, readings_of, run_for

import dualtest
from firmware import app as appmod
from firmware import config
from firmware.boards import sim

HOST_FIXTURES = ("mockhub_env", "rsa_env")
# as test_fw_app.py (the app, the agent, TLS), plus the RSA signing of an RSA_3072 agent
MPY_HEAPSIZE = "256K"
appmod.App.follow_gateway_clock = False  # the board on FakeTime, the hub on real time (see test_fw_app.py)


def rsa_node():
    """A simulated board for an RSA_3072 agent, whose key file (agent/rsa_key) is not on the flash."""
    created = admin("POST", "/admin/agents", {"profile": "RSA_3072"})
    flash = dualtest.tmpdir() + "/flash"
    cfg = {"sensors": [{"type": "sim", "name": "room", "points": [{"id": "t", "unit": "C"}]}],
           "sample_s": 10, "upload_s": 60, "safe_pin": None, "log_level": "warning",
           "spool": {"flush_every": 1}}
    t = FakeTime()
    board = sim.SimBoard(flash, t.clock, t.sleep, sim.SimState())
    dualtest.write_bytes(flash + "/config.json", json.dumps(cfg).encode())
    dualtest.write_bytes(flash + "/secrets.json", json.dumps({"onboarding_key": created["onboarding_key"]}).encode())
    dualtest.write_bytes(flash + "/ca.der", dualtest.read_bytes(dualtest.env("MOCKHUB_CA_DER")))
    return board, config.load(flash), created, t


def test_an_error_the_agent_raises_in_an_upload_does_not_stop_sampling():
    # The agent raises ConfigError at run time for a missing or damaged RSA key file (and for other
    # inputs it refuses). The app's upload passed it on, and power.py took it for a bad config.json: the
    # node stopped at the REPL, no more readings, until someone visited it. Now the upload fails, the
    # error is logged, the next upload tries again, and sampling goes on.
    board, cfg, created, t = rsa_node()
    lines = []
    a = appmod.App(board, cfg, log=lines.append)
    run_for(a, t, 125000)  # 13 samples; uploads due at 0, 60 s and 120 s, each refused by the agent
    assert a.samples == 13 and a.uploads == 0, (a.samples, a.uploads)
    assert a.upload_failures == 3, a.upload_failures  # retried at the upload period, not at each sample
    failed = [m for m in lines if "upload failed" in m]
    assert len(failed) == 3 and "RSA key" in failed[0], lines
    key = created["onboarding_key"]["content"]
    for m in lines:  # the onboarding key's secret part never in the log
        assert key["iat"] not in m, m
    # the key file is put in place (provisioning again): the next upload onboards and sends everything
    dualtest.write_bytes(board.flash_dir + "/agent/rsa_key", dualtest.read_bytes(dualtest.env("RSA_KEY_A")))
    run_for(a, t, 60000)
    a.close()
    assert a.uploads == 1 and a.readings.pending() == 0, lines
    assert len(readings_of(created["client_id"], "t")) == a.samples == 19


class _Events:
    """A watchdog that notes its feeds in a list the test shares with the NTP and gateway markers."""

    def __init__(self, events):
        self.events = events

    def feed(self):
        self.events.append("feed")


class _MarkedApp(appmod.App):
    """The app whose agent notes each connection it opens to the gateway."""

    marks = None

    def _make_agent(self):
        agent = appmod.App._make_agent(self)
        connect = agent.connect
        events = self.marks

        def marked(*args, **kw):
            events.append("gateway")
            return connect(*args, **kw)

        agent.connect = marked
        return agent


def test_the_watchdog_is_fed_between_ntp_and_the_gateway():
    # With the clock unset the app asks NTP (DNS and up to ntp.timeout_ms), then the gateway (DNS and a
    # connection that may wait 30 s before a byte moves): without a feed between them the two waits add
    # up beyond the least watchdog_ms the config check takes (45 s), and a node in a network where both
    # are slow was reset by its watchdog at each boot (a failed boot each time: safe mode after three).
    from firmware import net
    board, cfg, cid, t = node({"ntp": {"host": "127.0.0.1", "timeout_ms": 200}})  # no answer: the gateway is asked
    board.state.clock_offset_ms = -t.now  # the board's clock after a power cut: 1970
    events = []
    a = _MarkedApp(board, cfg, log=lambda m: None)
    a.marks = events
    a.wdt = _Events(events)
    real_sync = net.ntp_sync

    def ntp_sync(*args):
        got = real_sync(*args)
        events.append("ntp")
        return got

    net.ntp_sync = ntp_sync
    try:
        a._set_clock()
    finally:
        net.ntp_sync = real_sync
    a.close()
    assert a.clock_set(), events
    between = events[events.index("ntp"):events.index("gateway")]
    assert "feed" in between, events


def test_a_ca_file_gone_bad_after_the_boot_does_not_stop_sampling():
    # The boot's config check finds the CA file; the agent reads it at the first upload. Emptied,
    # garbled or deleted by then (a flash fault, a half-done provisioning), making the agent raised out
    # of the upload: ConfigError left the node at the REPL, a ValueError or OSError was a crash each
    # boot until safe mode. Either way no more readings until a visit. Now each upload fails, logged.
    board, cfg, cid, t = node()
    ca = dualtest.read_bytes(board.flash_dir + "/ca.der")
    lines = []
    a = appmod.App(board, cfg, log=lines.append)
    import os
    for bad in (b"", None, b"\x30\x82\xff\xff not a certificate"):  # the last one makes an agent
        if bad is None:
            os.remove(board.flash_dir + "/ca.der")
        else:
            dualtest.write_bytes(board.flash_dir + "/ca.der", bad)
        run_for(a, t, 60000)
    assert a.uploads == 0 and a.upload_failures == 3 and a.samples == 18, (a.uploads, a.upload_failures, a.samples)
    assert len([m for m in lines if "upload failed" in m]) == 3, lines
    a.close()
    dualtest.write_bytes(board.flash_dir + "/ca.der", ca)  # provisioned again, which restarts the board
    a = appmod.App(board, config.load(board.flash_dir), log=lines.append)
    run_for(a, t, 60000)
    a.close()
    assert a.uploads >= 1, lines
    assert len(readings_of(cid, "t")) == 18 + a.samples - a.readings.pending()  # the 18 before among them
