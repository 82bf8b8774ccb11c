# Recovery of the agent's credentials and clock after sequences of events, against the in-process fake
# hub (test_agent_hub.FakeHub), on both runtimes. Kept apart from test_agent.py, which runs close to its
# heap cap (a test function added there moved another test's minimum).
from test_agent_hub import FakeHub

import dualtest
from mindconnect import agent as agentmod
from mindconnect.clock import Clock

# As test_agent.py: the fake hub shares the interpreter with the agent; device memory is measured in
# test_agent_memory.py.
MPY_HEAPSIZE = "136K"


def make(hub, folder=None, board=None, **kw):
    folder = folder or dualtest.tmpdir() + "/store"
    src = board or (lambda: hub.now_s * 1000)
    return agentmod.Agent(folder, onboarding_key=hub.key(), clock=Clock(source=src),
                          http_factory=lambda host, port: hub, **kw)


def test_a_gateway_clock_that_drifted_is_corrected_once():
    # a board without NTP takes the gateway's time (an offset); its clock then runs 400 s fast in an hour:
    # the refused token's answer set the clock right, and the agent then moved it by the same 400 s again
    # (signing 400 s slow): refused once more, it rotated the secret for nothing
    hub = FakeHub()
    board = [5000]
    a = make(hub, board=lambda: board[0])
    a.authorize()
    assert a.clock.now() == hub.now_s
    hub.now_s += 3600
    board[0] += (3600 + 400) * 1000
    assert a.authorize() in hub.tokens
    assert a.clock.now() == hub.now_s and hub.rotations == 0
    assert hub.count("POST", "/api/agentmanagement/v3/oauth/token") == 3  # the first, the refused, the new
