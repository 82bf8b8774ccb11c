"""Data model (data source configuration) and data point mapping sync: loaded by Agent.sync_model
on demand, then dropped; the hub is only asked when a hash differs from the one last accepted."""

from mindconnect import credentials, items, jsonw
from mindconnect.errors import Rejected, ServerError

_JSON = "application/json"
_MAPPINGS = "/api/mindconnect/v3/dataPointMappings"


def quote(s):
    """Percent-encoding of a query value (everything but unreserved characters)."""
    out = []
    for b in s.encode():
        if 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or b in b"-._~":
            out.append(chr(b))
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def _put_dsc(agent, model, state):
    """PUT the model; with state (the model sent before, a day ago), only when the hub has another."""
    path = "/api/agentmanagement/v3/agents/" + agent.store.current().client_id + "/dataSourceConfiguration"
    for _ in (0, 1):
        r = agent._authed("GET", path)
        if r.status != 200:
            raise agent._failure(r, "reading the data source configuration")
        etag = r.json()
        if state and etag.get("configurationId") == model.config_id:
            return False
        etag = etag.get("eTag") or r.headers.get("etag") or "0"
        r = agent._authed("PUT", path, {"Content-Type": _JSON, "If-Match": str(etag)}, model.body)
        if r.status == 200:
            return True
        if r.status != 412:
            raise agent._failure(r, "data source configuration")
    raise Rejected("data source configuration: changed on the hub while it was updated (412 twice); "
                   "try again", 412)


def _via_exchange(agent, model):
    report = agent.exchange([items.dsc_item(model)])
    if report.count("sent", "items") != 1:
        o = report.outcomes[-1]
        if o.status == "retry":
            raise ServerError("data model: not sent; try again later", None,
                              (o.retry_at_ms - agent.clock.now_ms()) // 1000)
        raise Rejected("data model refused: %s" % o.reason)


def sync_model(agent, model, mappings, via_exchange):
    """Agent.sync_model after agent.model was set: True when anything was sent."""
    ident = agent._identities()[0]
    store = agent.store
    state = store.read(credentials.MODEL) or {}
    now = agent.clock.now()
    sent = False
    if state.get("dsc") != model.hash or not 0 <= now - state.get("at", 0) < 86400:
        # a new model, or a day since the hub was looked at: its model may have been replaced, its
        # mappings deleted (in Insights Hub, by another tool), and nothing else would tell the node
        if state.get("dsc") != model.hash:
            state = None
        if via_exchange and state is None:
            _via_exchange(agent, model)
            sent = True
        elif not via_exchange:
            sent = _put_dsc(agent, model, state)
        if sent:
            state = {"dsc": model.hash}  # a new DSC drops the mappings record: re-assert them all
            try:
                store.write(credentials.MODEL, state)
            except OSError:
                pass  # a full flash: the record's write below tries again and says so
        state["maps"] = None
    mh = items.mappings_hash(ident.client_id, mappings)
    if mappings and state.get("maps") != mh:
        _assert_mappings(agent, ident.client_id, mappings)
        sent = True
    state["maps"] = mh
    state["at"] = now
    try:
        store.write(credentials.MODEL, state)
    except OSError as e:
        # a full flash (the spools may take it all): the exchange that frees it must not wait for this
        # record (the app syncs the model before it exchanges); without it the hub is asked again
        agent._warn("data model record not saved (%s): the hub is asked again next time" % e)
    return sent


def _hub_mappings(agent, agent_id):
    path = "%s?size=2000&filter=%s" % (_MAPPINGS, quote(jsonw.dumps(jsonw.Obj(("agentId", agent_id)))))
    r = agent._authed("GET", path)
    if r.status != 200:
        raise agent._failure(r, "reading the data point mappings")
    return r.json().get("content") or []


def _assert_mappings(agent, agent_id, mappings):
    existing = None
    conflicts = []
    for m in mappings:
        r = agent._authed("POST", _MAPPINGS, {"Content-Type": _JSON}, items.mapping_body(agent_id, m))
        if r.status in (200, 201):
            continue
        if r.status != 409:
            e = agent._failure(r, "data point mapping of %s" % m.get("dataPointId"))
            if not isinstance(e, Rejected):  # later (5xx, 429): the rest later too
                raise e
            conflicts.append(e.message)  # refused for good (an asset deleted): the others are still made
            continue
        if existing is None:
            existing = _hub_mappings(agent, agent_id)
        same = [e for e in existing if e.get("dataPointId") == m["dataPointId"]
                and e.get("propertySetName") == m["propertySetName"]]
        # the same one among them is fine, whatever else the point is mapped to (another asset)
        if [e for e in same if e.get("entityId") == m["entityId"] and e.get("propertyName") == m["propertyName"]]:
            continue
        for e in same:
            conflicts.append("%s: hub has %s/%s.%s, configuration says %s/%s.%s" % (
                m["dataPointId"], e.get("entityId"), e.get("propertySetName"), e.get("propertyName"),
                m["entityId"], m["propertySetName"], m["propertyName"]))
    if conflicts:
        raise Rejected("data point mappings refused (delete the hub's mapping or change the configuration): "
                       + "; ".join(conflicts), 409)
