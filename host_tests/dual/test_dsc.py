# The data model and mapping sync (mindconnect.dsc) against the in-process fake hub, on both runtimes:
# mappings the hub refuses, one by one.
from test_agent_hub import FakeHub, Resp

import dualtest
from mindconnect import agent as agentmod
from mindconnect import items
from mindconnect.clock import Clock
from mindconnect.errors import Rejected

MPY_HEAPSIZE = "136K"
DESC = {"configurationId": "c1", "dataSources": [{"name": "env", "dataPoints": [
    {"id": "t", "name": "Temperature", "type": "DOUBLE", "unit": "C"},
    {"id": "h", "name": "Humidity", "type": "DOUBLE", "unit": "%"}]}]}


def make(hub):
    return agentmod.Agent(dualtest.tmpdir() + "/store", onboarding_key=hub.key(),
                          clock=Clock(source=lambda: hub.now_s * 1000), http_factory=lambda host, port: hub)


class _AssetGone(FakeHub):
    """A hub where the asset of one mapping was deleted: its POST is refused (404) for good."""

    def _route(self, method, path, headers, data):
        if method == "POST" and path.startswith("/api/mindconnect/v3/dataPointMappings") and b'"gone' in data:
            return Resp(404, {"message": "asset not found"})
        return FakeHub._route(self, method, path, headers, data)


def test_a_mapping_refused_for_good_does_not_keep_the_others_from_being_made():
    # the first mapping's asset was deleted in Insights Hub: its refusal raised at once, so the mappings
    # after it were never made, at this sync or any later one
    hub = _AssetGone()
    a = make(hub)
    maps = [{"dataPointId": "t", "entityId": "gone" + "0" * 28, "propertySetName": "env", "propertyName": "t"},
            {"dataPointId": "h", "entityId": "e" * 32, "propertySetName": "env", "propertyName": "h"}]
    e = dualtest.raises(Rejected, a.sync_model, items.DataModel(DESC), maps)
    assert "asset not found" in e.message, e.message
    assert [m["dataPointId"] for m in hub.mappings] == ["h"]
    assert hub.dsc["configurationId"] == "c1"


def test_mappings_deleted_and_a_model_replaced_on_the_hub_are_put_back_within_a_day():
    # someone deletes the node's mappings in Insights Hub, or saves another data source configuration
    # for the agent (which also drops its keepMapping:false mappings): the node compared only its own
    # hashes, so it never looked again: the readings were dropped (unknown configurationId) or landed in no
    # asset for good, and a reboot did not help; only a changed configuration (a visit) did
    hub = FakeHub()
    a = make(hub)
    model = items.DataModel(DESC)
    maps = [{"dataPointId": p, "entityId": "e" * 32, "propertySetName": "env", "propertyName": p} for p in "th"]
    assert a.sync_model(model, maps)
    n = len(hub.calls)
    hub.now_s += 3600
    assert not a.sync_model(model, maps) and len(hub.calls) == n  # within the day: nothing asked
    hub.mappings = []
    hub.dsc = {"configurationId": "made-in-the-ui", "dataSources": []}
    hub.etag += 1
    hub.now_s += 86400
    a.sync_model(model, maps)
    assert hub.dsc["configurationId"] == "c1"
    assert sorted(m["dataPointId"] for m in hub.mappings) == ["h", "t"]
    hub.mappings = hub.mappings[:1]  # the model is in place, a mapping is gone: it alone is made again
    hub.now_s += 86400
    a.sync_model(model, maps)
    assert sorted(m["dataPointId"] for m in hub.mappings) == ["h", "t"] and hub.count("PUT", "/api/agent") == 2
