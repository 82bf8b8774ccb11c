# The agent on a full flash (the spools may take all of it). Onboarding: the hub's 201 spends the onboarding
# key, so a node whose flash has no room for the identity must not send the key: an identity it then could
# not save could only be replaced by a new key, a visit to the machine (records the flash refuses later:
# test_agent_e2e._record_refused). Against tools/mockhub over real TLS. The
# MicroPython legs run on a real littlefs in RAM (test_spool_flash_full.littlefs), whose ENOSPC is the
# board's; CPython has no littlefs: its leg refuses every write in the store with ENOSPC.
import json
import os

from test_agent_e2e import admin, cut_short
from test_spool_flash_full import _fill, littlefs, unmount

import dualtest
from mindconnect import agent as agentmod
from mindconnect import credentials, items
from mindconnect.clock import Clock
from mindconnect.compat import unix_ms
from mindconnect.errors import MindConnectError, OnboardingRequired
from mindconnect.transport import Transport

HOST_FIXTURES = ("agent_hub",)
# the RAM block device of the littlefs (24 KB), the e2e module with its admin client and the agent from
# plain .mpy share the heap: measured minimum 190K with the onboarding tests; with the rotation tests
# 196-199K on their branch and 212K (five tmp-path lengths) after the merge with the session's other
# changes (more names in the test modules and renew: plain .mpy, so a qstr pool and the loader's copies
# move it; the device-form budget is test_agent_memory's). Worst + 8 KB.
MPY_HEAPSIZE = "220K"


def new_agent(folder):
    created = admin("POST", "/admin/agents", {})
    t = Transport(ca_der=dualtest.read_bytes(dualtest.env("MOCKHUB_CA_DER")))
    key = created["onboarding_key_json"]
    iat = json.loads(key)["content"]["iat"]
    return agentmod.Agent(folder, t.connect, onboarding_key=key), created["client_id"], iat


class FullFlash:
    """A store folder on a full flash (full=False: filled by fill()); room() gives room back."""

    def __init__(self, full=True):
        if dualtest.MICROPYTHON:
            self.root = littlefs(48)  # 24 KB
            self.folder = self.root + "/store"
        else:
            self.folder = dualtest.tmpdir() + "/store"
        os.mkdir(self.folder)
        if full:
            self.fill()

    def fill(self):
        if dualtest.MICROPYTHON:
            _fill(self.root + "/ballast")
            return
        import builtins
        self.open = real = builtins.open
        prefix = self.folder + "/"

        def full(path, mode="r", *args, **kw):
            if str(path).startswith(prefix) and ("w" in mode or "a" in mode):
                real(path, mode).close()  # what a write cut short by ENOSPC leaves
                raise OSError(28, "No space left on device")
            return real(path, mode, *args, **kw)
        builtins.open = full

    def room(self):
        if dualtest.MICROPYTHON:
            os.remove(self.root + "/ballast")
        else:
            import builtins
            builtins.open = self.open

    def close(self):
        if dualtest.MICROPYTHON:
            unmount(self.root)
        else:
            self.room()


def test_a_full_flash_keeps_the_onboarding_key_for_when_it_has_room():
    flash = FullFlash()
    try:
        a, cid, iat = new_agent(flash.folder)
        e = dualtest.raises(MindConnectError, a.onboard)
        assert "flash is full" in e.message and iat not in e.message, e.message
        assert not isinstance(e, OnboardingRequired) and e.retryable  # later, not a new key
        assert a.state == agentmod.NEW
        state = admin("GET", "/admin/agents/%s" % cid)
        assert not state["onboarding_key_used"] and not state["onboarded"], state
        assert "onboard.room" not in os.listdir(flash.folder)
        flash.room()  # the spools made room
        assert a.onboard()
        assert a.state == agentmod.READY and a.authorize()
        assert admin("GET", "/admin/agents/%s" % cid)["onboarding_key_used"]
        assert "onboard.room" not in os.listdir(flash.folder)
        a.close()
    finally:
        flash.close()


def test_the_room_a_power_cut_left_reserved_is_taken_again():
    # a cut while the key was on its way left the reserved room behind, then the flash filled up: the next
    # boot onboards in that room, and none of it stays taken
    if not dualtest.MICROPYTHON:
        dualtest.skip("needs a file system that runs full: littlefs under MicroPython")
    root = littlefs(48)
    try:
        folder = root + "/store"
        os.mkdir(folder)
        with open(folder + "/onboard.room", "wb") as f:
            f.write(bytes(4096))  # what onboarding reserves on 512-byte blocks
        _fill(root + "/ballast")
        a, cid, _ = new_agent(folder)
        assert a.onboard()
        assert a.state == agentmod.READY
        assert "onboard.room" not in os.listdir(folder)
        a.close()
    finally:
        unmount(root)


# -- key rotation on a full flash ---------------------------------------------------------------------

def node(folder, log, lifetime=2 * 86400):
    """A mock agent whose secret lasts lifetime seconds; returns wake() (the node's Agent at a start, on
    folder, with one clock), its client id and later(s), which moves the hub's clock and the node's."""
    created = admin("POST", "/admin/agents", {"secret_lifetime_s": lifetime})
    key = created["onboarding_key_json"]
    ca = dualtest.read_bytes(dualtest.env("MOCKHUB_CA_DER"))
    shift = [0]
    clock = Clock(source=lambda: unix_ms() + shift[0])

    def wake():
        return agentmod.Agent(folder, Transport(ca_der=ca).connect, onboarding_key=key, clock=clock, log=log)

    def later(s):
        admin("POST", "/admin/clock", {"advance": s})
        shift[0] += s * 1000
    return wake, created["client_id"], later


def upload(a):
    rep = a.exchange([items.custom_item("x", "1.0", "text/plain", "x")])
    return [o.status for o in rep.outcomes]


def temp_files(folder):
    return [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_a_rotation_the_flash_cannot_save_leaves_the_secret_in_use_and_is_done_again_later():
    # the hub issued a new secret and the full flash refused the identity: the OSError failed every upload
    # (the readings that filled the flash were never sent), and each one rotated again first
    warned = []
    folder = dualtest.tmpdir() + "/store"
    wake, cid, later = node(folder, warned.append)
    a = wake()
    a.authorize()
    old = a.store.current()
    later(23 * 3600 + 60)  # inside the rotation window: 25 h before the 2-day secret expires
    cut_short(credentials, "current.tmp")  # the store's own write path, down to the file
    try:
        for _ in range(3):  # one wake's requests
            assert upload(a) == [agentmod.SENT]
        a.close()
        b = wake()  # the next start, within the hour
        assert upload(b) == [agentmod.SENT]
        b.close()
    finally:
        del credentials.open
    state = admin("GET", "/admin/agents/%s" % cid)
    assert state["rotations"] == 1, state  # not one before every request
    assert [w for w in warned if w.startswith("key rotation not saved")], warned
    assert temp_files(folder) == [] and b.state == agentmod.READY
    assert b.store.current().same_credential(old)  # the new secret was never used unsaved
    # an hour later, with room: rotated again with the registration access token in use, and saved
    later(3700)
    c = wake()
    assert upload(c) == [agentmod.SENT]
    c.close()
    state = admin("GET", "/admin/agents/%s" % cid)
    assert state["rotations"] == 2 and state["new_secret_used"], state
    assert c.store.current().client_secret_expires_at > old.client_secret_expires_at
    assert not c.store.has_previous() and "rotate.room" in os.listdir(folder)


def _started(flash):
    """node() on flash's folder, woken and authorized: (its warnings, wake, client id, later, the agent)."""
    warned = []
    wake, cid, later = node(flash.folder, warned.append)
    a = wake()
    a.authorize()
    return warned, wake, cid, later, a


def _rotates_on_a_full_flash(rotations_before):
    """The flash fills up after the first token (rotations_before 0) or after the first rotation (1);
    the next rotation goes through on the room kept for it (rotate.room)."""
    if not dualtest.MICROPYTHON:
        dualtest.skip("needs a file system that runs full: littlefs under MicroPython")
    flash = FullFlash(full=False)
    try:
        warned, wake, cid, later, a = _started(flash)
        if rotations_before:
            later(23 * 3600 + 60)
            assert upload(a) == [agentmod.SENT]  # the first rotation, with room
        a.close()
        assert "rotate.room" in os.listdir(flash.folder)
        flash.fill()  # the spools took the rest
        later(2 * 86400 if rotations_before else 23 * 3600 + 60)  # the next rotation window
        b = wake()
        assert upload(b) == [agentmod.SENT]
        b.close()
        state = admin("GET", "/admin/agents/%s" % cid)
        assert state["rotations"] == rotations_before + 1 and state["new_secret_used"], (state, warned)
        assert b.state == agentmod.READY and temp_files(flash.folder) == []
    finally:
        flash.close()


def test_the_room_kept_for_rotations_lets_a_node_on_a_full_flash_rotate():
    # a rotation keeps room for the next one (rotate.room): the flash filled up between two rotations,
    # and the second one's new secret could not be saved, while the one in use ran out a day later
    _rotates_on_a_full_flash(1)


def test_the_room_kept_from_the_first_token_lets_the_first_rotation_through_a_full_flash():
    # onboarding leaves no room for a rotation: the first token makes it, so a flash the spools filled
    # before the first rotation does not leave the secret to expire unrotated (then only a hub that takes
    # the registration access token after the secret expired saves the node from a visit)
    _rotates_on_a_full_flash(0)


def test_a_secret_that_expires_on_a_full_flash_is_rotated_once_there_is_room():
    # no room was ever kept (the flash full from onboarding on, before the first token): no PUT while a
    # new secret cannot be saved, the secret in use serves; once expired, no NEEDS_KEY (a visit): the hub
    # takes the stored registration access token when room is back
    flash = FullFlash(full=False)
    try:
        warned = []
        wake, cid, later = node(flash.folder, warned.append)
        a = wake()
        a.onboard()
        flash.fill()
        a.authorize()
        a.close()
        assert "rotate.room" not in os.listdir(flash.folder)
        later(23 * 3600 + 60)
        b = wake()
        assert upload(b) == [agentmod.SENT]
        b.close()
        assert admin("GET", "/admin/agents/%s" % cid)["rotations"] == 0
        assert [w for w in warned if w.startswith("key rotation waits: the flash is full")], warned
        later(2 * 86400)  # days later: the secret expired, the flash still full
        for _ in range(2):
            c = wake()
            assert upload(c) == [agentmod.RETRY]
            c.close()
            assert c.state == agentmod.READY
        assert admin("GET", "/admin/agents/%s" % cid)["rotations"] == 0
        flash.room()
        d = wake()
        assert upload(d) == [agentmod.SENT]
        d.close()
        state = admin("GET", "/admin/agents/%s" % cid)
        assert state["rotations"] == 1 and state["new_secret_used"], state
        assert d.state == agentmod.READY and temp_files(flash.folder) == []
    finally:
        flash.close()


def _fake(hub, folder):
    return agentmod.Agent(folder, onboarding_key=hub.key(), clock=Clock(source=lambda: hub.now_s * 1000),
                          http_factory=lambda host, port: hub)


def test_a_refused_rotation_is_held_when_the_flash_refuses_the_hold():
    # the hub refuses the rotation (the registration access token superseded) and the full flash refuses
    # the file that holds it for an hour: the OSError failed the upload, and the next one rotated again
    from test_agent_hub import FakeHub
    hub = FakeHub(secret_lifetime=2 * 86400)
    folder = dualtest.tmpdir() + "/s"
    _fake(hub, folder).authorize()
    hub.now_s += 86400 - 3600 + 5
    hub.rats.clear()
    cut_short(credentials, "rotate.tmp")
    try:
        a = _fake(hub, folder)
        for _ in range(5):  # one wake's requests
            assert a.authorize() in hub.tokens
            hub.now_s += 60
    finally:
        del credentials.open
    assert hub.count("PUT", "/api/agentmanagement/v3/register/") == 1
    assert temp_files(folder) == []


def test_a_rotation_the_hub_cannot_do_now_is_held_when_the_flash_refuses_the_hold():
    from test_agent_hub import FakeHub, Resp
    hub = FakeHub(secret_lifetime=2 * 86400)
    folder = dualtest.tmpdir() + "/s"
    first = hub.now_s
    a = _fake(hub, folder)
    a.authorize()
    hub.now_s = first + 86400 - 3600 - 600
    tok = a.authorize(force=True)  # a token got just before the window opens
    hub.now_s += 700
    hub.fault("PUT", "/api/agentmanagement/v3/register/", Resp(503, {"message": "down"}))
    cut_short(credentials, "rotate.tmp")
    try:
        b = _fake(hub, folder)
        for _ in range(3):
            assert b.authorize() == tok
    finally:
        del credentials.open
    assert hub.count("PUT", "/api/agentmanagement/v3/register/") == 1 and temp_files(folder) == []
