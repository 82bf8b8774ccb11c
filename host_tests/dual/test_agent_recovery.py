# Recovery of the agent's credentials and clock after sequences of events, against the in-process fake
# hub (test_agent_hub.FakeHub), on both runtimes. Kept apart from test_agent.py, which runs close to its
# heap cap (a test function added there moved another test's minimum).
from test_agent_hub import FakeHub, Resp

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


def test_a_refused_rotation_is_not_asked_again_at_every_request():
    # inside the rotation window the hub refuses the registration access token (expired, or superseded)
    # while the secret still gives tokens: every request (each batch of a backlog, every wake) was
    # preceded by a refused rotation and a new token, for up to 25 h
    hub = FakeHub(secret_lifetime=2 * 86400)
    folder = dualtest.tmpdir() + "/s"
    make(hub, folder=folder).authorize()
    hub.now_s += 86400 - 3600 + 5
    hub.rats.clear()
    start = len(hub.calls)
    a = make(hub, folder=folder)
    for _ in range(5):  # one wake's requests
        assert a.authorize() in hub.tokens
        hub.now_s += 60
    for _ in range(3):  # the next wakes within the hour
        assert make(hub, folder=folder).authorize() in hub.tokens
        hub.now_s += 60
    assert hub.count("PUT", "/api/agentmanagement/v3/register/") == 1, hub.calls[start:]
    assert hub.count("POST", "/api/agentmanagement/v3/oauth/token") == 2, hub.calls[start:]
    # when that token runs out, the rotation is tried again (the hub may take it by then)
    hub.now_s += 3600
    b = make(hub, folder=folder)
    assert b.authorize() in hub.tokens
    assert hub.count("PUT", "/api/agentmanagement/v3/register/") == 2
    assert b.state == agentmod.READY and hub.registrations == 1


def test_a_rotation_the_hub_cannot_do_now_does_not_stop_the_uploads():
    # the rotation window opens while the hub's registration endpoint fails (503, an IAM outage): the
    # token on flash is good for most of an hour, but every upload failed at the rotation first, for as
    # long as the outage lasted (the spool filling, its oldest readings dropped)
    from mindconnect import items
    hub = FakeHub(secret_lifetime=2 * 86400)
    folder = dualtest.tmpdir() + "/s"
    first = hub.now_s
    a = make(hub, folder=folder)
    a.authorize()
    hub.now_s = first + 86400 - 3600 - 600
    tok = a.authorize(force=True)  # a token got just before the window opens
    hub.now_s += 700
    for _ in range(3):
        hub.fault("PUT", "/api/agentmanagement/v3/register/", Resp(503, {"message": "down"}))
    b = make(hub, folder=folder)  # the next wake, inside the window
    rep = b.exchange([items.custom_item("x", "1.0", "text/plain", "x")])
    assert [o.status for o in rep.outcomes] == [agentmod.SENT], rep.outcomes
    assert hub.count("PUT", "/api/agentmanagement/v3/register/") == 1
    assert b.authorize() == tok and hub.rotations == 0
    # the hub is back: the rotation is done when the token runs out
    hub.faults = []
    hub.now_s += 3600
    assert make(hub, folder=folder).authorize() in hub.tokens and hub.rotations == 1


def test_needs_key_stays_quiet_on_a_board_clock_behind_the_gateway():
    # every credential refused (the agent deleted in Insights Hub) on a board whose clock runs 2 min behind
    # the gateway's: NEEDS_KEY was dated by the clock renew had corrected from the gateway, the next boot's
    # clock (the board's) read before that date, and that was taken for "a day has passed": every upload
    # period tried every token and rotation again instead of once a day
    from mindconnect.errors import OnboardingRequired
    hub = FakeHub()
    folder = dualtest.tmpdir() + "/s"
    behind = lambda: (hub.now_s - 120) * 1000  # noqa: E731
    make(hub, folder=folder, board=behind).authorize()
    hub.secrets.clear()
    hub.rats.clear()
    hub.tokens.clear()
    path = "/api/agentmanagement/v3/agents/cid0123/dataSourceConfiguration"
    dualtest.raises(OnboardingRequired, make(hub, folder=folder, board=behind)._authed, "GET", path)  # 401
    calls = len(hub.calls)
    for _ in range(3):  # the next upload periods
        hub.now_s += 30
        dualtest.raises(OnboardingRequired, make(hub, folder=folder, board=behind)._authed, "GET", path)
    assert len(hub.calls) == calls, hub.calls[calls:]
    hub.now_s += 86400  # a day later: tried once more
    dualtest.raises(OnboardingRequired, make(hub, folder=folder, board=behind)._authed, "GET", path)
    assert len(hub.calls) > calls
