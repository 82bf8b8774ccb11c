"""Agent data endpoints: data source configuration, mappings, exchange, diagnostics, Event Management
and IoT File. Each handler takes (hub, req, agent, ...) and returns (status, JSON-able body or bytes,
extra headers); refusals raise HubError.
"""

import hashlib
import hmac
import json
import shutil
import urllib.parse
import uuid

from tools.mockhub import multipart, validate
from tools.mockhub.iam import HubError, iso

EMPTY_DSC = {"configurationId": "", "dataSources": []}
DATALAKE_PUT = "/mockhub-datalake/"
DATALAKE_MAX_BYTES = 256 * 1024 * 1024


def _json(req):
    try:
        return json.loads(req.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise HubError(400, "request body is not JSON") from None


def _own(agent, client_id):
    if client_id != agent["client_id"]:
        raise HubError(403, "an agent may only access its own resources (token is for another agent)")


def dsc_view(agent):
    dsc = agent["dsc"] or dict(EMPTY_DSC, eTag="0")
    return {"id": agent["client_id"], "eTag": dsc["eTag"], "configurationId": dsc["configurationId"],
            "dataSources": dsc["dataSources"]}


def _apply_dsc(hub, db, agent, doc, source):
    """Make doc the agent's DSC (new eTag), record history, drop mappings without keepMapping."""
    etag = str(int((agent["dsc"] or {}).get("eTag", "0")) + 1)
    agent["dsc"] = {"eTag": etag, "configurationId": doc["configurationId"], "dataSources": doc["dataSources"]}
    db.execute("INSERT INTO dsc_history (client_id, etag, at, source, doc) VALUES (?,?,?,?,?)",
               (agent["client_id"], etag, hub.now(), source, json.dumps(doc)))
    for mid, mdoc in db.execute("SELECT id, doc FROM mappings WHERE client_id=?", (agent["client_id"],)).fetchall():
        if not json.loads(mdoc).get("keepMapping"):
            db.execute("DELETE FROM mappings WHERE id=?", (mid,))


def dsc_get(hub, req, agent, client_id):
    _own(agent, client_id)
    return 200, dsc_view(agent), [("ETag", dsc_view(agent)["eTag"])]


def dsc_put(hub, req, agent, client_id):
    _own(agent, client_id)
    if_match = req.header("if-match")
    if if_match is None:
        raise HubError(400, "If-Match header is required: send the eTag from the last GET (\"0\" at first)")
    current = dsc_view(agent)["eTag"]
    if if_match.strip().removeprefix("W/").strip('"') != current:
        raise HubError(412, "If-Match %r does not match the current eTag %r: GET the configuration first"
                       % (if_match, current))
    doc = _json(req)
    reason = validate.dsc_reason(doc)
    if reason:
        raise HubError(400, reason)
    with hub.store.transaction() as db:
        _apply_dsc(hub, db, agent, {"configurationId": doc["configurationId"], "dataSources": doc["dataSources"]},
                   "put")
        hub.store.put_agent(agent, db)
    return 200, dsc_view(agent), [("ETag", agent["dsc"]["eTag"])]


_MAPPING_FIELDS = ("agentId", "dataPointId", "entityId", "propertySetName", "propertyName")


def _mapping_view(agent, doc):
    points = validate.points_of(agent["dsc"])
    unit = next((p.get("unit") for s in (agent["dsc"] or {}).get("dataSources", [])
                 for p in s["dataPoints"] if p["id"] == doc["dataPointId"]), None)
    valid = doc["dataPointId"] in points
    out = dict(doc)
    out.update({"dataPointUnit": unit, "dataPointType": points.get(doc["dataPointId"]), "propertyUnit": unit,
                "propertyType": points.get(doc["dataPointId"]), "qualityEnabled": True,
                "validity": {"status": "VALID" if valid else "INVALID",
                             "reasons": [] if valid else ["MISSING_DATAPOINT"]}})
    return out


def paged(items, req):
    try:
        size = max(1, int(req.query.get("size", ["2000"])[0]))
        page = max(0, int(req.query.get("page", ["0"])[0]))
    except ValueError:
        raise HubError(400, "size and page must be integers") from None
    total = len(items)
    pages = max(1, -(-total // size))
    content = items[page * size:(page + 1) * size]
    return {"content": content, "last": page >= pages - 1, "totalPages": pages, "totalElements": total,
            "numberOfElements": len(content), "first": page == 0, "sort": [], "size": size, "number": page}


def mapping_post(hub, req, agent):
    doc = _json(req)
    if not isinstance(doc, dict):
        raise HubError(400, "mapping must be a JSON object")
    for k in _MAPPING_FIELDS:
        if not isinstance(doc.get(k), str) or not doc[k]:
            raise HubError(400, "mapping field %s must be a non-empty string" % k)
    if not isinstance(doc.get("keepMapping", False), bool):
        raise HubError(400, "keepMapping must be true or false")
    _own(agent, doc["agentId"])
    mapping = {k: doc[k] for k in _MAPPING_FIELDS}
    mapping["keepMapping"] = doc.get("keepMapping", False)
    with hub.store.transaction() as db:
        for (mdoc,) in db.execute("SELECT doc FROM mappings WHERE client_id=?", (agent["client_id"],)).fetchall():
            m = json.loads(mdoc)
            if all(m[k] == mapping[k] for k in ("dataPointId", "entityId", "propertySetName")):
                raise HubError(409, "a mapping for data point %r and property set %r exists (id %s)"
                               % (m["dataPointId"], m["propertySetName"], m["id"]))
        mapping = dict(id=uuid.uuid4().hex, **mapping)
        db.execute("INSERT INTO mappings VALUES (?,?,?)", (mapping["id"], agent["client_id"], json.dumps(mapping)))
    return 201, _mapping_view(agent, mapping), []


def mappings_of(hub, client_id):
    return [json.loads(d) for (d,) in hub.store.query("SELECT doc FROM mappings WHERE client_id=? ORDER BY rowid",
                                                      (client_id,))]


def mapping_list(hub, req, agent):
    raw = req.query.get("filter", [""])[0]
    if raw:
        try:
            flt = json.loads(raw)
        except json.JSONDecodeError:
            raise HubError(400, 'filter must be JSON, e.g. {"agentId":"<id>"}') from None
        if isinstance(flt, dict) and "agentId" in flt:
            _own(agent, flt["agentId"])
    items = [_mapping_view(agent, m) for m in mappings_of(hub, agent["client_id"])]
    return 200, paged(items, req), []


def mapping_delete(hub, req, agent, mapping_id):
    rows = hub.store.query("SELECT client_id FROM mappings WHERE id=?", (mapping_id,))
    if not rows:
        raise HubError(404, "no mapping with id %s" % mapping_id)
    _own(agent, rows[0][0])
    hub.store.execute("DELETE FROM mappings WHERE id=?", (mapping_id,))
    return 204, b"", []


class _Plan:
    """What one exchange will store, built completely before anything is written."""

    def __init__(self):
        self.rows, self.events, self.files, self.custom, self.dscs, self.dropped = [], [], [], [], [], []


def _payload_json(item, where):
    if multipart.parse_content_type(item.payload_type)[0] != "application/json":
        raise HubError(400, "%s: payload Content-Type must be application/json, not %r" % (where, item.payload_type))
    try:
        return json.loads(item.payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HubError(400, "%s: payload is not JSON (%s)" % (where, e)) from None


def _plan_item(plan, item, dsc, numeric):
    """Judge one item; returns the DSC in force after it."""
    where = "item %d" % item.index
    try:
        meta = json.loads(item.meta_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HubError(400, "%s: meta is not JSON (%s)" % (where, e)) from None
    reason = validate.meta_reason(meta)
    if reason:
        raise HubError(400, "%s: %s" % (where, reason))
    kind, version = meta["payload"]["type"], meta["payload"]["version"]
    details = meta["payload"].get("details") or {}
    drop = lambda loc, why: plan.dropped.append((item.index, kind, loc, why))  # noqa: E731
    if kind == "standardTimeSeries":
        payload = _payload_json(item, where)
        if not dsc or details["configurationId"] != dsc["configurationId"]:
            drop("item", "unknown configurationId %r (the agent's is %r)"
                 % (details["configurationId"], (dsc or {}).get("configurationId")))
            return dsc
        rows, dropped = validate.timeseries(payload, dsc, numeric)
        plan.rows += rows
        for loc, why in dropped:
            drop(loc, why)
    elif kind == "businessEvent":
        payload = _payload_json(item, where)
        if not isinstance(payload, list):
            drop("payload", "businessEvent payload must be a JSON list of events")
            return dsc
        for i, ev in enumerate(payload):
            why = validate.event_reason(ev, version)
            if why:
                drop("[%d]" % i, why)
            else:
                plan.events.append(ev)
    elif kind == "dataSourceConfiguration":
        payload = _payload_json(item, where)
        why = validate.dsc_reason(payload)
        if why:
            drop("payload", why)
            return dsc
        dsc = {"configurationId": payload["configurationId"], "dataSources": payload["dataSources"]}
        plan.dscs.append(dsc)
    elif kind == "file":
        plan.files.append((details["fileName"], details.get("fileType"), details.get("creationDate"), item.payload))
    else:
        plan.custom.append((kind, version, item.payload_type, item.payload, details))
    return dsc


def exchange(hub, req, agent):
    try:
        items = multipart.parse_exchange(req.header("content-type"), req.body)
    except multipart.FramingError as e:
        raise HubError(400, str(e)) from None
    plan = _Plan()
    dsc = agent["dsc"]
    for item in items:
        dsc = _plan_item(plan, item, dsc, hub.numeric_values == "accept")
    if plan.dropped and hub.strict:
        raise HubError(400, "strict mode: " + "; ".join("item %d %s: %s" % (i, loc, why)
                                                         for i, _, loc, why in plan.dropped[:20]))
    cid = agent["client_id"]
    file_paths = [hub.store.write_file(cid, hashlib.sha256(c).hexdigest(), c) for _, _, _, c in plan.files]
    now = hub.now()
    with hub.store.transaction() as db:
        ex = db.execute("INSERT INTO exchanges (client_id, at, size, items, dropped) VALUES (?,?,?,?,?)",
                        (cid, now, len(req.body), len(items), len(plan.dropped))).lastrowid
        db.executemany("INSERT INTO timeseries (client_id, exchange_id, timestamp, datapoint, value, quality) "
                       "VALUES (?,?,?,?,?,?)", [(cid, ex) + r for r in plan.rows])
        db.executemany("INSERT INTO events (client_id, exchange_id, source, doc) VALUES (?,?,?,?)",
                       [(cid, ex, "exchange", json.dumps(e)) for e in plan.events])
        for (name, ftype, created, content), path in zip(plan.files, file_paths):
            db.execute("INSERT INTO files (client_id, exchange_id, name, size, sha256, file_type, creation_date, "
                       "source, path) VALUES (?,?,?,?,?,?,?,?,?)",
                       (cid, ex, name, len(content), hashlib.sha256(content).hexdigest(), ftype, created,
                        "exchange", path))
        for kind, version, ctype, content, details in plan.custom:
            db.execute("INSERT INTO custom (client_id, exchange_id, type, version, content_type, size, sha256, "
                       "details) VALUES (?,?,?,?,?,?,?,?)", (cid, ex, kind, version, ctype, len(content),
                                                            hashlib.sha256(content).hexdigest(), json.dumps(details)))
        for d in plan.dscs:
            _apply_dsc(hub, db, agent, d, "exchange")
        db.executemany("INSERT INTO dropped (client_id, exchange_id, at, item, kind, location, reason) "
                       "VALUES (?,?,?,?,?,?,?)", [(cid, ex, now) + d for d in plan.dropped])
        agent["last_exchange_at"] = now
        hub.store.put_agent(agent, db)
    return 200, b"", []


def _activation(hub, agent, act_id):
    rows = hub.store.query("SELECT id, client_id, status FROM diagnostics WHERE id=?", (act_id,))
    if not rows:
        raise HubError(404, "no diagnostic activation with id %s" % act_id)
    _own(agent, rows[0][1])
    return {"id": rows[0][0], "agentId": rows[0][1], "status": rows[0][2]}


def diag_messages(hub, client_id):
    out = []
    for ex, at, item, kind, loc, reason in hub.store.query(
            "SELECT exchange_id, at, item, kind, location, reason FROM dropped WHERE client_id=? ORDER BY id",
            (client_id,)):
        out.append({"correlationId": "exchange-%d" % ex, "severity": "ERROR", "source": "exchange",
                    "state": "DROPPED", "timestamp": iso(at),
                    "message": "item %d (%s) %s dropped: %s" % (item, kind, loc, reason)})
    return out


def diagnostics(hub, req, agent, act_id=None, sub=None):
    if act_id is None and req.method == "POST":
        doc = _json(req)
        if not isinstance(doc, dict) or not isinstance(doc.get("agentId"), str):
            raise HubError(400, 'body must be {"agentId":"<id>","status":"ACTIVE"}')
        _own(agent, doc["agentId"])
        status = doc.get("status", "ACTIVE")
        if status not in ("ACTIVE", "INACTIVE"):
            raise HubError(400, "status must be ACTIVE or INACTIVE")
        if hub.store.query("SELECT 1 FROM diagnostics WHERE client_id=?", (agent["client_id"],)):
            raise HubError(409, "this agent already has a diagnostic activation")
        act = {"id": uuid.uuid4().hex, "agentId": agent["client_id"], "status": status}
        hub.store.execute("INSERT INTO diagnostics VALUES (?,?,?)", (act["id"], act["agentId"], status))
        return 201, act, []
    if act_id is None and req.method == "GET":
        rows = hub.store.query("SELECT id, client_id, status FROM diagnostics WHERE client_id=?",
                               (agent["client_id"],))
        return 200, paged([{"id": r[0], "agentId": r[1], "status": r[2]} for r in rows], req), []
    act = _activation(hub, agent, act_id)
    if sub == "messages" and req.method == "GET":
        return 200, paged(diag_messages(hub, agent["client_id"]), req), []
    if sub is None and req.method == "GET":
        return 200, act, []
    if sub is None and req.method == "PUT":
        doc = _json(req)
        if not isinstance(doc, dict) or doc.get("status") not in ("ACTIVE", "INACTIVE"):
            raise HubError(400, 'body must be {"status":"ACTIVE"} or {"status":"INACTIVE"}')
        hub.store.execute("UPDATE diagnostics SET status=? WHERE id=?", (doc["status"], act_id))
        act["status"] = doc["status"]
        return 200, act, []
    if sub is None and req.method == "DELETE":
        hub.store.execute("DELETE FROM diagnostics WHERE id=?", (act_id,))
        return 204, b"", []
    raise HubError(405, "method %s not allowed here" % req.method)


def diagnostic_information(hub, req, agent):
    msgs = [dict(m, agentId=agent["client_id"]) for m in diag_messages(hub, agent["client_id"])]
    return 200, paged(msgs, req), []


def event_post(hub, req, agent):
    doc = _json(req)
    if not isinstance(doc, dict):
        raise HubError(400, "event must be a JSON object")
    if not isinstance(doc.get("entityId"), str) or not doc["entityId"]:
        raise HubError(400, "entityId is required")
    why = validate.timestamp_reason(doc.get("timestamp"))
    if why:
        raise HubError(400, why)
    out = dict(doc, id=uuid.uuid4().hex)
    out.setdefault("typeId", "com.siemens.mindsphere.eventmgmt.event.type.MindSphereStandardEvent")
    hub.store.execute("INSERT INTO events (client_id, exchange_id, source, doc) VALUES (?,?,?,?)",
                      (agent["client_id"], None, "eventmanagement", json.dumps(out)))
    return 201, out, []


def _iotfile_etag(hub, agent, name, if_match):
    """The current ETag of an IoT File path (its number of versions); 412 when If-Match names another."""
    etag = hub.store.query("SELECT COUNT(*) FROM files WHERE client_id=? AND source='iotfile' AND name=?",
                           (agent["client_id"], name))[0][0]
    if if_match is not None and if_match.strip('"') != str(etag):
        raise HubError(412, "If-Match %r does not match the file's ETag %d" % (if_match, etag))
    return etag


def _iotfile_store(hub, req, agent, name, content, file_type, timestamp):
    etag = _iotfile_etag(hub, agent, name, req.header("if-match"))
    sha = hashlib.sha256(content).hexdigest()
    fpath = hub.store.write_file(agent["client_id"], sha, content)
    hub.store.execute("INSERT INTO files (client_id, exchange_id, name, size, sha256, file_type, creation_date, "
                      "source, path) VALUES (?,?,?,?,?,?,?,?,?)",
                      (agent["client_id"], None, name, len(content), sha, file_type, timestamp, "iotfile", fpath))
    return (201 if etag == 0 else 200), b"", [("ETag", str(etag + 1))]


def _upload_dir(hub, agent, name):
    return hub.store.files_dir / agent["client_id"] / "uploads" / hashlib.sha256(name.encode()).hexdigest()


def _iotfile_multipart(hub, req, agent, name, upload, part):
    """The Node client's multi-part mode: ?upload=start (empty body), ?part=n (any order, some at once),
    the last chunk on ?upload=complete, ?upload=abort. Parts wait on disk until the upload completes."""
    d = _upload_dir(hub, agent, name)
    if upload == "start":
        if req.body:
            raise HubError(400, "?upload=start takes an empty body: send the chunks with ?part=n")
        _iotfile_etag(hub, agent, name, req.header("if-match"))
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        (d / "meta.json").write_text(json.dumps({"type": req.header("type"), "timestamp": req.header("timestamp")}))
        return 201, b"", []
    if not (d / "meta.json").exists():
        raise HubError(400, "no multi-part upload of %s in progress: begin with ?upload=start" % name)
    if upload == "abort":
        shutil.rmtree(d, ignore_errors=True)
        return 204, b"", []
    numbers = sorted(int(p.name[5:]) for p in d.glob("part-*") if p.name[5:].isdigit())
    if part is not None:
        try:
            n = int(part)
        except ValueError:
            n = 0
        if n < 1:
            raise HubError(400, "part must be a positive integer, not %r" % part)
        _write_part(d, n, req.body)
        return 201, b"", []
    if upload != "complete":
        raise HubError(400, "upload must be start, complete or abort, not %r" % upload)
    if req.body:  # the last chunk comes with the completion
        numbers.append((numbers[-1] if numbers else 0) + 1)
        _write_part(d, numbers[-1], req.body)
    if numbers != list(range(1, len(numbers) + 1)):
        raise HubError(400, "parts %s were received: a part is missing, the upload stays open" % numbers)
    content = b"".join((d / ("part-%d" % n)).read_bytes() for n in numbers)
    meta = json.loads((d / "meta.json").read_text())
    out = _iotfile_store(hub, req, agent, name, content, req.header("type", meta["type"]),
                         req.header("timestamp", meta["timestamp"]))
    shutil.rmtree(d, ignore_errors=True)
    return out


def _write_part(d, n, content):
    tmp = d / ("part-%d.tmp" % n)
    tmp.write_bytes(content)
    tmp.replace(d / ("part-%d" % n))


def iotfile_put(hub, req, agent, entity_id, path):
    """Single PUT (201 new, 200 overwrite) or multi-part upload; ETag grows per path; If-Match must
    match when sent."""
    name = entity_id + "/" + path
    upload, part = req.query.get("upload", [None])[0], req.query.get("part", [None])[0]
    if upload is not None or part is not None:
        return _iotfile_multipart(hub, req, agent, name, upload, part)
    return _iotfile_store(hub, req, agent, name, req.body, req.header("type"), req.header("timestamp"))


def _datalake_sig(hub, client_id, path):
    return hmac.new(hub.url_key, (client_id + "\n" + path).encode(), hashlib.sha256).hexdigest()


def datalake_urls(hub, req, agent):
    """MCL's data lake: one signed upload URL per path (201), pointing back at the mock."""
    doc = _json(req)
    paths = doc.get("paths") if isinstance(doc, dict) else None
    if not isinstance(paths, list) or not paths or not all(
            isinstance(p, dict) and isinstance(p.get("path"), str) and p["path"] for p in paths):
        raise HubError(400, 'body must be {"paths":[{"path":"<client id>/<name>"}, ...]}')
    cid = agent["client_id"]
    urls = [{"path": p["path"], "signedUrl": "%s%s%s?%s" % (
        hub.base_url, DATALAKE_PUT, urllib.parse.quote(p["path"]),
        urllib.parse.urlencode({"client": cid, "sig": _datalake_sig(hub, cid, p["path"])}))} for p in paths]
    return 201, {"objectUrls": urls}, []


def datalake_put(hub, req, agent, quoted_path):
    """The PUT to a signed URL (as to Azure Blob: x-ms-blob-type: BlockBlob); 403 for a bad signature."""
    path = urllib.parse.unquote(quoted_path)
    cid = req.query.get("client", [""])[0]
    sig = req.query.get("sig", [""])[0]
    if not cid or hub.store.agent(cid) is None or not hmac.compare_digest(sig, _datalake_sig(hub, cid, path)):
        raise HubError(403, "signature of the upload URL does not match: ask generateUploadObjectUrls again")
    sha = hashlib.sha256(req.body).hexdigest()
    fpath = hub.store.write_file(cid, sha, req.body)
    hub.store.execute("INSERT INTO files (client_id, exchange_id, name, size, sha256, file_type, creation_date, "
                      "source, path) VALUES (?,?,?,?,?,?,?,?,?)",
                      (cid, None, path, len(req.body), sha, req.header("content-type"), None, "datalake", fpath))
    return 201, b"", []
