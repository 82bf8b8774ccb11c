"""The node's data model and its mappings, as the hub wants them: used once a boot (firmware.app loads
this module for it and unloads it after), so its tables and texts take no heap in between."""

import binascii
import hashlib
import json

from mindconnect import items

# self-telemetry points of the "node" data source: id, name, type, unit
TELEMETRY = (
    ("node_free_heap", "Free heap", "LONG", "B"),
    ("node_spool_depth", "Readings queued", "LONG", ""),
    ("node_dropped", "Readings dropped", "LONG", ""),
    ("node_rssi", "Wi-Fi RSSI", "INT", "dBm"),
    ("node_reset_cause", "Reset cause", "STRING", ""),
    ("node_uptime", "Uptime", "LONG", "s"),
    ("node_upload_failures", "Upload failures", "LONG", ""),
)


def description(cfg):
    """The data model derived from the configured sensors, plus the "node" telemetry source.

    The configurationId is taken from the content, so a changed configuration is a new model.
    """
    sources = []
    for s in cfg.sensors:
        dps = []
        for p in s["points"]:
            dps.append({"id": p["id"], "name": p.get("name") or p["id"], "type": p.get("type", "DOUBLE"),
                        "unit": p.get("unit", "")})
        sources.append({"name": s["name"], "dataPoints": dps})
    sources.append({"name": "node", "dataPoints": [
        {"id": t[0], "name": t[1], "type": t[2], "unit": t[3]} for t in TELEMETRY]})
    desc = {"configurationId": "", "dataSources": sources}
    digest = hashlib.sha256(json.dumps(sources).encode()).digest()
    desc["configurationId"] = "node-" + binascii.hexlify(digest[:8]).decode()
    return desc


def model(cfg):
    """The items.DataModel of description(cfg)."""
    return items.DataModel(description(cfg))


def mappings(cfg, client_id):
    """The configured mappings as the agent sends them (entity_id defaults to the agent itself)."""
    return [{"dataPointId": m["point"], "entityId": m["entity_id"] or client_id,
             "propertySetName": m["property_set"], "propertyName": m["property"],
             "keepMapping": m["keep"]} for m in cfg.mappings]
