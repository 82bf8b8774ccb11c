# The agent end to end against tools/mockhub over real TLS on 127.0.0.1, on both runtimes: the full
# lifecycle with what the mock stored compared to what was sent, and the failures the agent must ride
# out (401, 429 + Retry-After, 500, a connection dropped mid-upload, 400 on a batch, wrong CA).
# The mock is driven through its admin HTTP API, so the MicroPython leg does the same as CPython.
import hashlib
import json

import dualtest
from mindconnect import agent as agentmod
from mindconnect import credentials, errors, items
from mindconnect.errors import Rejected
from mindconnect.http import HTTPClient
from mindconnect.transport import Transport

HOST_FIXTURES = ("agent_hub",)
# This module's own code, its admin client and the JSON of the mock's answers share the interpreter with
# the agent; the device's budget is not what these tests measure. Measured minimum, plain .mpy: the
# outage test needs about 141K (the others 116K and 112K), plus a margin for longer tmp paths in a full run.
MPY_HEAPSIZE = "148K"

DESC = {"configurationId": "cfg-e2e", "dataSources": [{"name": "env", "dataPoints": [
    {"id": "temp", "name": "Temperature", "type": "DOUBLE", "unit": "C"},
    {"id": "on", "name": "Heater", "type": "BOOLEAN", "unit": ""}]}]}
T0 = 1764050571000


def admin(method, path, doc=None, sink=None):
    url = dualtest.env("MOCKHUB_ADMIN_URL")
    c = HTTPClient(Transport(tls=False).connect, "127.0.0.1", int(url.rsplit(":", 1)[1]), max_body=65536)
    try:
        r = c.request(method, path, {"Content-Type": "application/json"} if doc is not None else None,
                      json.dumps(doc) if doc is not None else None, sink=sink)
    finally:
        c.close()
    if r.status >= 300:
        raise AssertionError("admin %s %s: %d %s" % (method, path, r.status, r.body))
    return r.json() if r.body else None


def rows_stored(cid):
    """How many time series rows the mock stored, counted as the JSON list of flat numeric rows streams by
    (the whole list would take several KB of the agent's heap in this process)."""
    opened = [0]

    def sink(chunk):
        opened[0] += bytes(chunk).count(b"[")

    admin("GET", "/admin/agents/%s/timeseries" % cid, sink=sink)
    return opened[0] - 1


def new_agent(ca=None, **kw):
    created = admin("POST", "/admin/agents", {})
    ca_der = dualtest.read_bytes(ca or dualtest.env("MOCKHUB_CA_DER"))
    t = Transport(ca_der=ca_der)
    a = agentmod.Agent(dualtest.tmpdir() + "/store", t.connect, onboarding_key=created["onboarding_key_json"], **kw)
    return a, t, created["client_id"]


def readings(n, start=0, bad_every=0):
    for i in range(start, start + n):
        if bad_every and i % bad_every == 0:
            yield T0 + i * 1000, [("nope", 1.0)]
        else:
            yield T0 + i * 1000, [("temp", 20 + i * 0.25), ("on", i % 2 == 0)]


def _file(path, size):
    h = hashlib.sha256()
    chunk = b"0123456789abcdef" * 256
    with open(path, "wb") as f:
        left = size
        while left > 0:
            piece = chunk[:left] if left < len(chunk) else chunk
            f.write(piece)
            h.update(piece)
            left -= len(piece)
    return "".join("%02x" % b for b in h.digest())


def test_full_lifecycle_matches_what_the_mock_stored():
    a, t, cid = new_agent()
    model = items.DataModel(DESC)
    maps = [{"dataPointId": "temp", "entityId": "e" * 32, "propertySetName": "env", "propertyName": "t"}]
    assert a.sync_model(model, maps)
    assert not a.sync_model(model, maps)  # unchanged: nothing sent again
    path = dualtest.tmpdir() + "/blob.bin"
    digest = _file(path, 1024 * 1024)
    ev = items.event_record(2, "temp above 30", "ThresholdViolation", T0, "1b4e28ba-2fa1-41d2-883f-0016d3cca427")
    custom = items.custom_item("noteType", "1.0", "text/plain", "hello hub")
    rep = a.exchange([items.event_item([ev]), items.file_item(path, T0), custom], timeseries=readings(21, 0, 10))
    assert [o.status for o in rep.outcomes] == [agentmod.SENT], rep.outcomes
    assert rep.invalid == 3 and rep.count(agentmod.SENT) == 18
    assert t.handshakes == 1  # onboarding, token, DSC, mapping and exchange on one connection
    rows = admin("GET", "/admin/agents/%s/timeseries" % cid)
    assert len(rows) == 36 and rows[0][1:3] == ["temp", "20.25"], rows[:2]
    assert admin("GET", "/admin/agents/%s/dropped" % cid) == []
    files = admin("GET", "/admin/agents/%s/files" % cid)
    assert files[0][0] == "blob.bin" and files[0][1] == 1024 * 1024 and files[0][2] == digest
    evs = admin("GET", "/admin/agents/%s/events" % cid)
    assert len(evs) == 1 and evs[0]["description"] == "temp above 30"
    assert admin("GET", "/admin/agents/%s/custom" % cid)[0]["size"] == 9
    dsc = admin("GET", "/admin/agents/%s/dsc" % cid)
    assert dsc["configurationId"] == "cfg-e2e"
    assert [m["dataPointId"] for m in admin("GET", "/admin/agents/%s/mappings" % cid)] == ["temp"]


def test_failures_are_ridden_out_and_nothing_is_lost():
    a, t, cid = new_agent(body_limit=4096)
    a.sync_model(items.DataModel(DESC))
    # 401 mid-session: a new token and the same request again
    admin("POST", "/admin/agents/%s/expire-token" % cid)
    rep = a.exchange(timeseries=readings(10))
    assert [o.status for o in rep.outcomes] == [agentmod.SENT]
    # 429 with Retry-After: retry later, not before
    admin("POST", "/admin/faults", {"client_id": cid, "endpoint": "exchange", "status": 429, "retry_after": 7})
    rep = a.exchange(timeseries=readings(10, 10))
    o = rep.outcomes[-1]
    assert o.status == agentmod.RETRY and o.retry_at_ms - a.clock.now_ms() >= 6000
    assert a.exchange().outcomes[0].reason == "backing off"
    a.retry_at_ms = None  # the caller slept until then
    # 500, then a connection dropped mid-upload: both retried later, the staged readings are resent
    admin("POST", "/admin/faults", {"client_id": cid, "endpoint": "exchange", "status": 500})
    assert a.exchange(timeseries=readings(0)).outcomes[-1].status == agentmod.RETRY
    a.retry_at_ms = None
    # (count 2: http.py reconnects once by itself when a kept-alive connection was found closed)
    admin("POST", "/admin/faults", {"client_id": cid, "endpoint": "exchange", "drop_after_request_bytes": 700,
                                    "count": 2})
    assert a.exchange(timeseries=readings(0)).outcomes[-1].status == agentmod.RETRY
    a.retry_at_ms = None
    rep = a.exchange(timeseries=readings(0))
    assert rep.outcomes and rep.outcomes[-1].status == agentmod.SENT
    assert rows_stored(cid) == 40  # 20 readings, 2 points each, once each
    # 400 on one batch: set aside with the reason, the next batches flow (several under 4 KB)
    admin("POST", "/admin/faults", {"client_id": cid, "endpoint": "exchange", "status": 400,
                                    "message": "bad batch"})
    rep = a.exchange(timeseries=readings(60, 100))
    statuses = [o.status for o in rep.outcomes]
    assert statuses[0] == agentmod.REJECTED and "bad batch" in rep.outcomes[0].reason
    assert statuses[1:] and set(statuses[1:]) == {agentmod.SENT}
    kept = rep.outcomes[0].readings
    assert rows_stored(cid) == 40 + 2 * (60 - kept)
    with open(a.aside.path, "rb") as f:
        assert b"bad batch" in f.read()
    assert admin("GET", "/admin/agents/%s/dropped" % cid) == []


def test_a_token_answer_lost_is_asked_again_with_a_new_assertion():
    # the hub took the token request and the answer was lost: the same form again (the kept-alive
    # connection's resend) is a replayed jti, refused with 400, which cost a needless key rotation
    a, t, cid = new_agent()
    a.authorize()  # onboard, token: the connection stays open
    before = admin("GET", "/admin/agents/%s" % cid)
    admin("POST", "/admin/faults", {"client_id": cid, "endpoint": "token", "drop_after_response_bytes": 0})
    assert a.authorize(force=True)
    after = admin("GET", "/admin/agents/%s" % cid)
    assert after["rotations"] == before["rotations"], (before, after)
    assert after["tokens_issued"] == before["tokens_issued"] + 2  # the lost one, then the new one
    a.close()


def test_a_token_request_whose_new_connection_closes_costs_one_handshake():
    # an outage (the hub drops each connection once the request is in): a wake's token request, on a new
    # connection, is not signed and sent again on a second one (a second handshake that fails the same way)
    a, t, cid = new_agent()
    a.authorize()
    a.close()  # the next wake cycle starts on a new connection
    before = admin("GET", "/admin/counters")
    admin("POST", "/admin/faults", {"client_id": cid, "endpoint": "token", "drop_after_request_bytes": 0})
    try:
        a.authorize(force=True)
        raise AssertionError("a token although the connection was dropped")
    except errors.NetworkError:
        pass
    after = admin("GET", "/admin/counters")
    assert after["handshakes"] - before["handshakes"] == 1, (before, after)
    assert after["endpoints"]["token"] - before["endpoints"]["token"] == 1, (before, after)
    assert a.authorize(force=True)  # the next try signs anew
    a.close()


class _CutShort:
    """A file whose first write is cut short by ENOSPC, as on a full flash."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, b):
        self.f.write(b"{")  # what a write cut short leaves
        raise OSError(28)


def cut_short(module, suffix):
    """module's open() gives files ending with suffix whose writes fail; `del module.open` undoes it."""
    def cut(path, mode="r"):
        f = open(path, mode)
        return _CutShort(f) if path.endswith(suffix) else f
    module.open = cut


def _record_refused(name, warning):
    """The store's document `name` refused by a full flash (its temp file's write cut short): the
    exchange goes on, the warning is logged, no temp file is left taking room."""
    a, _, cid = new_agent()
    warned = []
    a.log = warned.append
    cut_short(credentials, name + ".tmp")  # the store's own write path, down to the file
    try:
        a.sync_model(items.DataModel(DESC))  # onboarding, the first token, the data model
    finally:
        del credentials.open
    rep = a.exchange(timeseries=readings(5))
    a.close()
    assert [o.status for o in rep.outcomes] == [agentmod.SENT] and rep.count(agentmod.SENT) == 5
    assert rows_stored(cid) == 10  # 5 readings of 2 points
    assert [w for w in warned if w.startswith(warning)], warned
    import os
    assert name + ".tmp" not in os.listdir(a.store.folder)


def test_a_token_a_full_flash_cannot_take_still_serves_the_exchange():
    """A full flash refusing the token file (the spools may take all of it) failed every upload, so the
    readings that filled the flash were never sent: the token now serves from RAM."""
    _record_refused("token", "access token not saved")


def test_a_data_model_record_the_full_flash_refuses_does_not_stop_the_exchange():
    # the app syncs the data model before it exchanges: a record of it that a full flash refused failed
    # every upload (an OSError), so the readings that filled the flash were never sent to free it
    _record_refused("model", "data model record not saved")


def test_retry_after_is_honoured_up_to_six_hours():
    # a bogus Retry-After (a year) would silence the node for that long: its backoff is kept across resets
    from mindconnect import failure
    assert failure.retry_after_s({"retry-after": " 7 "}, 0) == 7
    assert failure.retry_after_s({"retry-after": "31536000"}, 0) == 21600
    now = 1767225600  # 2026-01-01
    assert failure.retry_after_s({"retry-after": "Thu, 01 Jan 2026 00:02:00 GMT"}, now) == 120
    assert failure.retry_after_s({"retry-after": "Fri, 01 Jan 2027 00:00:00 GMT"}, now) == 21600
    assert failure.retry_after_s({"retry-after": "soon"}, now) is None
    assert failure.retry_after_s({}, now) is None


def test_wrong_ca_is_refused_before_any_credential_is_sent():
    a, t, cid = new_agent(ca=dualtest.env("WRONG_CA_DER"))
    rep = a.exchange([items.custom_item("x", "1.0", "text/plain", "x")])
    o = rep.outcomes[0]
    assert o.status == agentmod.RETRY and "certificate" in o.reason.lower(), o.reason
    state = admin("GET", "/admin/agents/%s" % cid)
    assert not state["onboarded"] and not state["onboarding_key_used"] and state["tokens_issued"] == 0


def test_a_point_mapped_to_two_assets_is_no_conflict_after_a_model_change():
    # one data point mapped to two assets (same property set and property): the hub keeps both (keepMapping)
    # across a new data model, and re-asserting them answers 409 for each; the hub's listing then holds the
    # exact mapping and the one to the other asset. That is no conflict: the node must carry on (a Rejected
    # here stops every later upload of the app, which syncs the model before it exchanges)
    a, t, cid = new_agent()
    maps = [{"dataPointId": "temp", "entityId": e * 32, "propertySetName": "env", "propertyName": "t"}
            for e in ("a", "b")]
    assert a.sync_model(items.DataModel(DESC), maps)
    assert len(admin("GET", "/admin/agents/%s/mappings" % cid)) == 2
    desc2 = {"configurationId": "cfg-e2e-2", "dataSources": DESC["dataSources"] + [
        {"name": "more", "dataPoints": [{"id": "hum", "name": "Humidity", "type": "DOUBLE", "unit": "%"}]}]}
    assert a.sync_model(items.DataModel(desc2), maps)  # the firmware update's model
    assert not a.sync_model(items.DataModel(desc2), maps)
    assert len(admin("GET", "/admin/agents/%s/mappings" % cid)) == 2
    maps[0]["propertyName"] = "t2"  # a real conflict is still one: the hub maps temp to a's env.t
    e = dualtest.raises(Rejected, a.sync_model, items.DataModel(desc2), maps)
    assert e.status == 409 and "configuration says %s/env.t2" % ("a" * 32) in e.message, e.message
    a.close()
