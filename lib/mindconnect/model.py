"""The data model's rules: a description checked and made canonical (items.DataModel), and data point
mapping bodies. Loaded on demand and dropped after (items.DataModel, agent._run): once a model is built,
none of this code or its messages is needed in the heap."""

import binascii
import hashlib

from mindconnect import jsonw
from mindconnect.compat import json_str
from mindconnect.errors import ConfigError

TYPES = ("INT", "LONG", "DOUBLE", "BOOLEAN", "STRING", "BIG_STRING", "TIMESTAMP")


def _need_str(d, key, where, limit):
    v = d.get(key)
    if not isinstance(v, str) or not v or len(v) > limit:
        raise ConfigError("%s: '%s' must be a non-empty string of at most %d characters" % (where, key, limit))
    return v


def build(model, description):
    """Set model's .config_id, .points, .body and .hash from description (see items.DataModel)."""
    model.config_id = _need_str(description, "configurationId", "data model", 36)
    sources = description.get("dataSources")
    if not isinstance(sources, (list, tuple)) or not sources:
        raise ConfigError("data model: 'dataSources' must be a non-empty list")
    model.points = {}
    out = []
    for src in sources:
        name = _need_str(src, "name", "data source", 64)
        dps = []
        for dp in src.get("dataPoints") or ():
            dp_id = _need_str(dp, "id", "data point in " + name, 36)
            where = "data point " + dp_id
            dp_type = dp.get("type")
            if dp_type not in TYPES:
                raise ConfigError("%s: type must be one of %s" % (where, ", ".join(TYPES)))
            unit = dp.get("unit", "")
            if not isinstance(unit, str) or len(unit) > 32:
                raise ConfigError(where + ": 'unit' must be a string of at most 32 characters")
            if dp_id in model.points:
                raise ConfigError(where + ": the id is used twice; data point ids must be unique")
            model.points[dp_id] = (dp_type, json_str(dp_id).encode())
            pairs = [("id", dp_id), ("name", _need_str(dp, "name", where, 64))]
            if dp.get("description"):
                pairs.append(("description", dp["description"]))
            pairs.append(("type", dp_type))
            pairs.append(("unit", unit))
            dps.append(jsonw.Obj(*pairs))
        if not dps:
            raise ConfigError("data source %s: it needs at least one data point" % name)
        pairs = [("name", name)]
        if src.get("description"):
            pairs.append(("description", src["description"]))
        pairs.append(("dataPoints", dps))
        out.append(jsonw.Obj(*pairs))
    model.body = jsonw.dumpb(jsonw.Obj(("configurationId", model.config_id), ("dataSources", out)))
    model.hash = binascii.hexlify(hashlib.sha256(model.body).digest()).decode()


def mapping_body(agent_id, m, keep_default=True):
    """The POST body of a data point mapping (bytes), keys in the documented order."""
    where = "mapping of " + str(m.get("dataPointId"))
    keep = m.get("keepMapping", keep_default)
    return jsonw.dumpb(jsonw.Obj(
        ("agentId", agent_id),
        ("dataPointId", _need_str(m, "dataPointId", where, 36)),
        ("entityId", _need_str(m, "entityId", where, 64)),
        ("propertySetName", _need_str(m, "propertySetName", where, 128)),
        ("propertyName", _need_str(m, "propertyName", where, 128)),
        ("keepMapping", bool(keep)),
    ))


def mappings_hash(agent_id, mappings):
    h = hashlib.sha256()
    for m in mappings:
        h.update(mapping_body(agent_id, m))
    return binascii.hexlify(h.digest()).decode()
