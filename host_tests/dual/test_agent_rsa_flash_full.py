# An RSA_3072 agent whose rotation to the next key meets a full flash (the spools may take all of it),
# against tools/mockhub over real TLS: the next key's kid is written as pending before the PUT, and a
# flash that refused it failed every upload with an OSError (no PUT was sent, the key in use was good).
import os

from test_agent_e2e import admin, cut_short
from test_agent_rsa import new_rsa_agent

import dualtest
from mindconnect import credentials, rsa

HOST_FIXTURES = ("agent_hub", "rsa_env")
# as test_agent_rsa_next.py (device form)
MPY_HEAPSIZE = "106K"
MPY_DEVICE_FORM = "rom"


def test_a_pending_key_the_full_flash_refuses_sends_no_rotation_and_waits_for_room():
    warnings = []
    a, cid = new_rsa_agent(keys=("RSA_KEY_A", "RSA_KEY_B"), log=warnings.append)
    a.onboard()
    kid_a = rsa.kid_of(dualtest.env("RSA_KEY_A"))
    kid_b = rsa.kid_of(dualtest.env("RSA_KEY_B"))
    a.rotate_before_s = 10 ** 9
    cut_short(credentials, "rsa_pending.tmp")  # the store's own write path, down to the file
    try:
        assert a.authorize()  # the key in use serves
    finally:
        del credentials.open
    state = admin("GET", "/admin/agents/" + cid)
    assert state["rotations"] == 0 and state["tokens_issued"] == 1 and state["key_id"] == kid_a, state
    assert [w for w in warnings if w.startswith("key rotation waits: the flash is full")], warnings
    assert a.store.read(rsa.RSA_PENDING) is None
    assert [n for n in os.listdir(a.store.folder) if n.endswith(".tmp")] == []
    # an hour later (the rotation is held that long), with room: the rotation to the next key
    admin("POST", "/admin/clock", {"advance": 3700})
    a.clock.offset_ms += 3700 * 1000
    assert a.authorize(force=True)
    state = admin("GET", "/admin/agents/" + cid)
    assert state["rotations"] == 1 and state["key_id"] == kid_b and a.store.current().kid == kid_b, state
    a.close()
