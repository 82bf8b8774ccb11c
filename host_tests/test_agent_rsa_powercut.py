"""Power cuts during the rotation of an RSA_3072 agent to its next key: the MicroPython agent process of
test_agent_powercut is SIGKILLed at each rotation step, then restarted. It must finish the rotation
with the next key (pending before the PUT, promoted after the first token), never onboard again, and
leave one key file registered at the mock.
"""

import mpyharness
import pytest
from test_agent_powercut import LIFETIME, SCRIPT, STEPS, _run

from tools.rsakey import MAGIC

# Measured minimum (120K fails; the SHARED_SECRET agent of test_agent_powercut needs 112K): the rsa module,
# the key and the JWKS body are alive during the rotation's first TLS connection.
HEAP = "124K"


def _kid(path):
    raw = path.read_bytes()
    return raw[len(MAGIC) + 1:len(MAGIC) + 1 + raw[len(MAGIC)]].decode()


@pytest.mark.parametrize("step", STEPS)
def test_rsa_rotation_to_next_key_survives_a_power_cut(step, mpy, mockhub, rsa_keys, tmp_path):
    src = tmp_path / "powercut_agent.py"
    src.write_text(SCRIPT)
    extra = tmp_path / "mpy"
    extra.mkdir()
    mod = mpyharness.compile_script(src, extra)
    created = mockhub.create_agent(secret_lifetime_s=LIFETIME, profile="RSA_3072")
    cid = created["client_id"]
    store = tmp_path / "store"
    rsa_keys.install(store, next_key=True)
    env = {"CA_DER": str(mockhub.ca_der_path), "STORE": str(store),
           "KEY": created["onboarding_key_json"], "ROTATE_BEFORE": str(LIFETIME + 60)}
    # first boot: onboards with key a, rotates at once to key b, cut at `step`
    out = _run(mpy, mod, extra, env, kill_at=step, heap=HEAP)
    assert out and out[-1].strip() == "@@CP " + step, "".join(out)
    # restart (rotation still due): the rotation completes with key b, without a new onboarding key
    out = _run(mpy, mod, extra, env, heap=HEAP)
    assert out and out[-1].strip() == "@@OK ready 1", "".join(out)
    assert "@@CP onboard:saved\n" not in out
    state = mockhub.agent_state(cid)
    assert state["key_id"] == rsa_keys.kid_b and state["tokens_issued"] >= 1
    assert _kid(store / "rsa_key") == rsa_keys.kid_b
    assert not (store / "rsa_next").exists() and not (store / "rsa_pending").exists()
    # the normal window: the identity and key on flash are good for the next boot
    env["ROTATE_BEFORE"] = str(LIFETIME - 60)
    out = _run(mpy, mod, extra, env, heap=HEAP)
    assert out[-1].strip() == "@@OK ready 0", "".join(out)
