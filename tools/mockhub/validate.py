"""What the cloud checks in the agent's data: DSC documents, meta JSON, time series and events.

Functions return a reason string (what is wrong, for the user) or None when the thing is valid.
"""

import datetime
import json
import re

POINT_TYPES = ("INT", "LONG", "DOUBLE", "BOOLEAN", "STRING", "BIG_STRING", "TIMESTAMP")
_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_INT = re.compile(r"^[+-]?\d+$")
_DOUBLE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_QUALITY = re.compile(r"^[0-9A-Fa-f]{1,8}$")
_LIMITS = {"INT": 2 ** 31, "LONG": 2 ** 63}


def timestamp_reason(ts):
    if not isinstance(ts, str) or not _TS.match(ts):
        return "timestamp %r is not YYYY-MM-DDTHH:MM:SS.mmmZ" % (ts,)
    try:
        datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return "timestamp %r is not a valid date and time" % ts
    return None


def _str(obj, key, maxlen, where, required=True):
    v = obj.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or (required and not v):
        return "%s: %s must be a non-empty string" % (where, key)
    if len(v) > maxlen:
        return "%s: %s is longer than %d characters" % (where, key, maxlen)
    return None


def dsc_reason(doc):
    """Why a data source configuration {configurationId, dataSources} is invalid, or None."""
    if not isinstance(doc, dict):
        return "data source configuration must be a JSON object"
    r = _str(doc, "configurationId", 36, "configuration")
    if r:
        return r
    sources = doc.get("dataSources")
    if not isinstance(sources, list):
        return "configuration: dataSources must be a list"
    seen = set()
    for i, src in enumerate(sources):
        where = "dataSources[%d]" % i
        if not isinstance(src, dict):
            return where + " must be an object"
        r = _str(src, "name", 64, where) or _str(src, "description", 256, where, required=False)
        if r:
            return r
        points = src.get("dataPoints")
        if not isinstance(points, list):
            return where + ": dataPoints must be a list"
        for j, p in enumerate(points):
            pw = "%s.dataPoints[%d]" % (where, j)
            if not isinstance(p, dict):
                return pw + " must be an object"
            r = _str(p, "id", 36, pw) or _str(p, "name", 64, pw)
            if r:
                return r
            if p["id"] in seen:
                return "%s: id %r is used twice" % (pw, p["id"])
            seen.add(p["id"])
            if p.get("type") not in POINT_TYPES:
                return "%s: type must be one of %s" % (pw, ", ".join(POINT_TYPES))
            if not isinstance(p.get("unit"), str) or len(p["unit"]) > 32:
                return "%s: unit must be a string of at most 32 characters (\"\" is fine)" % pw
    return None


def points_of(dsc):
    """{dataPointId: type} of a stored DSC."""
    out = {}
    for src in (dsc or {}).get("dataSources", []):
        for p in src.get("dataPoints", []):
            out[p["id"]] = p["type"]
    return out


def meta_reason(meta):
    """Why an item's meta JSON is not {"type":"item","version":"1.0","payload":{type,version,details?}}."""
    if not isinstance(meta, dict):
        return "meta must be a JSON object"
    if meta.get("type") != "item" or meta.get("version") != "1.0":
        return 'meta must have "type":"item" and "version":"1.0"'
    payload = meta.get("payload")
    if not isinstance(payload, dict):
        return "meta.payload must be an object"
    for k in ("type", "version"):
        if not isinstance(payload.get(k), str) or not payload[k]:
            return "meta.payload.%s must be a non-empty string" % k
    if "details" in payload and not isinstance(payload["details"], dict):
        return "meta.payload.details must be an object"
    details = payload.get("details") or {}
    if payload["type"] == "standardTimeSeries" and not isinstance(details.get("configurationId"), str):
        return "meta.payload.details.configurationId is required for standardTimeSeries"
    if payload["type"] == "file" and not isinstance(details.get("fileName"), str):
        return "meta.payload.details.fileName is required for file items"
    return None


def value_reason(point_type, value):
    """Why value (as received) does not fit a data point of point_type, or None."""
    if not isinstance(value, str):
        return "value must be a JSON string, got %s" % type(value).__name__
    if point_type in _LIMITS:
        if not _INT.match(value):
            return "value %r is not an integer (%s)" % (value[:40], point_type)
        if not -_LIMITS[point_type] <= int(value) < _LIMITS[point_type]:
            return "value %r is out of range for %s" % (value[:40], point_type)
    elif point_type == "DOUBLE" and not _DOUBLE.match(value):
        return "value %r is not a number (DOUBLE)" % value[:40]
    elif point_type == "BOOLEAN" and value not in ("true", "false"):
        return 'value %r is not "true" or "false" (BOOLEAN)' % value[:40]
    elif point_type == "TIMESTAMP":
        return timestamp_reason(value)
    return None


def timeseries(payload, dsc, numeric=False):
    """Split a time series payload into (accepted rows, dropped [(where, reason)]).

    Rows are (timestamp, dataPointId, value, qualityCode). A record with a bad timestamp is dropped
    whole; otherwise each value is judged on its own, as the cloud drops what it cannot map.
    numeric: take a JSON number for a value (the Node client's types allow one; what the cloud does
    with it is not known), judged as the text it was written as.
    """
    if not isinstance(payload, list):
        return [], [("payload", "time series payload must be a JSON list of {timestamp, values}")]
    points = points_of(dsc)
    rows, dropped = [], []
    for i, rec in enumerate(payload):
        where = "[%d]" % i
        if not isinstance(rec, dict) or not isinstance(rec.get("values"), list):
            dropped.append((where, "record must be an object with timestamp and a values list"))
            continue
        r = timestamp_reason(rec.get("timestamp"))
        if r:
            dropped.append((where, r))
            continue
        for j, v in enumerate(rec["values"]):
            vw = "%s.values[%d]" % (where, j)
            if not isinstance(v, dict):
                dropped.append((vw, "value entry must be an object"))
                continue
            dp = v.get("dataPointId")
            q = v.get("qualityCode")
            if dp not in points:
                r = "unknown dataPointId %r (not in the data source configuration)" % (dp,)
            elif q is not None and not (isinstance(q, str) and _QUALITY.match(q)):
                r = "qualityCode %r must be a string of 1-8 hex digits" % (q,)
            else:
                value = v.get("value")
                if numeric and isinstance(value, (int, float)) and not isinstance(value, bool):
                    value = json.dumps(value)
                r = value_reason(points[dp], value)
            if r:
                dropped.append((vw, r))
            else:
                rows.append((rec["timestamp"], dp, value, q))
    return rows, dropped


_SEVERITIES = {"1.0": (1, 2, 3), "2.0": (20, 30, 40)}


def event_reason(ev, version):
    if not isinstance(ev, dict):
        return "event must be an object"
    r = timestamp_reason(ev.get("timestamp"))
    if r:
        return r
    allowed = _SEVERITIES.get(version, (1, 2, 3))
    if ev.get("severity", allowed[-1]) not in allowed:
        return "severity %r is not one of %s for businessEvent %s" % (ev.get("severity"), allowed, version)
    for k in ("type", "version"):
        if not isinstance(ev.get(k), str) or not ev[k]:
            return "%s must be a non-empty string" % k
    desc = ev.get("description", "")
    if not isinstance(desc, str) or len(desc) >= 256:
        return "description must be a string shorter than 256 characters"
    if "details" in ev and not isinstance(ev["details"], dict):
        return "details must be an object"
    return None
