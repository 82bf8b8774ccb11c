# The exchange split against the agent's body limit, with the in-process fake hub (test_agent_hub.FakeHub)
# on both runtimes: no request over body_limit when items and spools share one (the hub or a proxy in
# front of it refuses those with 413). Kept apart from test_agent.py, which runs close to its heap cap.
import json

from test_agent_hub import FakeHub

import dualtest
from mindconnect import agent as agentmod
from mindconnect import items, multipart
from mindconnect.clock import Clock
from mindconnect.spool import Spool

# As test_agent.py: the fake hub shares the interpreter with the agent; device memory is measured in
# test_agent_memory.py.
MPY_HEAPSIZE = "136K"
UUID = "1b4e28ba-2fa1-41d2-883f-%012d"


def make(hub, **kw):
    return agentmod.Agent(dualtest.tmpdir() + "/store", onboarding_key=hub.key(),
                          clock=Clock(source=lambda: hub.now_s * 1000), http_factory=lambda host, port: hub, **kw)


def test_an_event_that_does_not_fit_the_rest_of_a_request_waits_for_the_next():
    # after an item, the room left was more than an event item's framing and less than its first record:
    # the event spool hands out at least one record, and that record went into the request anyway
    custom = items.custom_item("noteType", "1.0", "text/plain", b"n" * 500)
    framing = items.event_item(multipart.BytesSource(b"")).wire_length()
    limit = multipart.BODY_OVERHEAD + custom.wire_length() + framing + 20
    hub = FakeHub()
    hub.max_body = limit
    warnings = []
    a = make(hub, body_limit=limit, log=warnings.append)
    a.authorize()
    events = Spool(dualtest.tmpdir() + "/ev", flush_every=None)
    for i in range(3):
        events.append(items.event_record(3, "door %d opened" % i, "Door", 1764050571000 + i, UUID % i))
    rep = a.exchange([custom], events=events)
    assert hub.count("POST", "/api/mindconnect/v3/exchange") == 2  # none refused as too large
    sizes = [len(b) for b in hub.bodies]
    assert sizes and max(sizes) <= limit, (sizes, limit)
    assert [o.status for o in rep.outcomes] == [agentmod.SENT, agentmod.SENT], rep.outcomes
    assert rep.count(agentmod.SENT, "events") == 3 and not events.pending()
    got = []
    for kind, payload in hub.exchanged_parts():
        if kind == "businessEvent":
            got += [e["description"] for e in json.loads(payload)]
    assert got == ["door 0 opened", "door 1 opened", "door 2 opened"]  # each once, in order
    assert a.body_limit == limit and not warnings  # no 413 taken for the limit of a proxy
    events.close()
