# The exchange split against the agent's body limit, with the in-process fake hub (test_agent_hub.FakeHub)
# on both runtimes: no request over body_limit when items and spools share one (the hub or a proxy in
# front of it refuses those with 413). Kept apart from test_agent.py, which runs close to its heap cap.
import json

from test_agent_hub import FakeHub, Resp

import dualtest
from mindconnect import agent as agentmod
from mindconnect import items, multipart
from mindconnect.clock import Clock
from mindconnect.spool import Spool

# As test_agent.py: the fake hub shares the interpreter with the agent; device memory is measured in
# test_agent_memory.py.
MPY_HEAPSIZE = "136K"
UUID = "1b4e28ba-2fa1-41d2-883f-%012d"


def make(hub, folder="/store", **kw):
    return agentmod.Agent(dualtest.tmpdir() + folder, onboarding_key=hub.key(),
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


DESC = {"configurationId": "c1", "dataSources": [{"name": "env", "dataPoints": [
    {"id": "t", "name": "Temperature", "type": "DOUBLE", "unit": "C"}]}]}


def _sent_values(hub):
    got = []
    for kind, payload in hub.exchanged_parts():
        if kind == "standardTimeSeries":
            got += [row["values"][0]["value"] for row in json.loads(payload)]
    return got


def test_readings_that_do_not_fit_the_rest_of_a_request_wait_for_the_next():
    # readings from an iterable are staged on flash in batches of the room a request has left: after an
    # item that left less than one reading, the stage raised ConfigError out of exchange() (the reading
    # it took from the iterator lost), and readings staged earlier over that room did too
    model = items.DataModel(DESC)
    framing = items.timeseries_item(model.config_id, multipart.BytesSource(b"")).wire_length()
    custom = items.custom_item("noteType", "1.0", "text/plain", b"n" * 500)
    limit = multipart.BODY_OVERHEAD + custom.wire_length() + framing + 20
    readings = [(1764050571000 + i * 1000, [("t", i)]) for i in range(8)]
    for staged_before in (False, True):
        hub = FakeHub()
        a = make(hub, "/s%d" % staged_before, body_limit=limit + 400 if staged_before else limit)
        a.sync_model(model)
        if staged_before:  # staged to the room a request had, then no answer: kept on flash
            hub.fault("POST", "/api/mindconnect/v3/exchange", Resp(503, {"message": "later"}))
            rep = a.exchange(timeseries=iter(readings))
            assert [(o.status, o.readings) for o in rep.outcomes] == [(agentmod.RETRY, 8)]
            a.retry_at_ms = None
            a.body_limit = limit  # as after a 413 from a proxy: what is staged is over the room left
        rep = a.exchange([custom], timeseries=iter(() if staged_before else readings))
        assert rep.count(agentmod.SENT) == 8 and rep.invalid == 0, rep.outcomes
        assert rep.outcomes[0].items == [custom]
        assert _sent_values(hub) == [str(i) for i in range(8)], staged_before  # each once, in order
        a.close()
