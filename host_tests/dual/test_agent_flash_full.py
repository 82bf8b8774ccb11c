# The agent on a full flash (the spools may take all of it). Onboarding: the hub's 201 spends the onboarding
# key, so a node whose flash has no room for the identity must not send the key: an identity it then could
# not save could only be replaced by a new key, a visit to the machine (records the flash refuses later:
# test_agent_e2e._record_refused). Against tools/mockhub over real TLS. The
# MicroPython legs run on a real littlefs in RAM (test_spool_flash_full.littlefs), whose ENOSPC is the
# board's; CPython has no littlefs: its leg refuses every write in the store with ENOSPC.
import json
import os

from test_agent_e2e import admin
from test_spool_flash_full import _fill, littlefs, unmount

import dualtest
from mindconnect import agent as agentmod
from mindconnect.errors import MindConnectError, OnboardingRequired
from mindconnect.transport import Transport

HOST_FIXTURES = ("agent_hub",)
# the RAM block device of the littlefs (24 KB), the e2e module with its admin client and the agent from
# plain .mpy share the heap: measured minimum 190K
MPY_HEAPSIZE = "204K"


def new_agent(folder):
    created = admin("POST", "/admin/agents", {})
    t = Transport(ca_der=dualtest.read_bytes(dualtest.env("MOCKHUB_CA_DER")))
    key = created["onboarding_key_json"]
    iat = json.loads(key)["content"]["iat"]
    return agentmod.Agent(folder, t.connect, onboarding_key=key), created["client_id"], iat


class FullFlash:
    """A store folder on a full flash; room() gives room back."""

    def __init__(self):
        if dualtest.MICROPYTHON:
            self.root = littlefs(48)  # 24 KB
            self.folder = self.root + "/store"
            os.mkdir(self.folder)
            _fill(self.root + "/ballast")
            return
        import builtins
        self.folder = dualtest.tmpdir() + "/store"
        os.mkdir(self.folder)
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
