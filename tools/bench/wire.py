"""Wire efficiency (bytes per reading against the Node client's form) and connections per upload cycle.

Runs the real agent from lib/ under CPython against the mock hub; the bytes are those written to the TLS
stream, the handshakes and requests are the mock's own counters.
"""

import json
import shutil

from tools.bench.rig import Rig

BATCH = 100
T0 = 1764050571000


class CountingConnect:
    """Wraps Transport.connect: counts the bytes the agent writes to every stream it opens."""

    def __init__(self, connect):
        self.connect_fn = connect
        self.written = 0

    def __call__(self, host, port, timeout_ms):
        stream = self.connect_fn(host, port, timeout_ms)
        write = stream.write

        def counted(buf):
            n = write(buf)
            self.written += len(buf) if n is None else n
            return n
        stream.write = counted
        return stream


def node_body(config_id, timestamp, value):
    """The body mindconnect-nodejs sends for one reading (PROTOCOL.md Part B, one request per timestamp)."""
    meta = {"type": "item", "version": "1.0", "payload": {"type": "standardTimeSeries", "version": "1.0",
                                                          "details": {"configurationId": config_id}}}
    payload = json.dumps([{"timestamp": timestamp, "values": [{"dataPointId": "temp", "value": value,
                                                               "qualityCode": "0"}]}], separators=(",", ":"))
    return ("--mindspheremessage\nContent-Type:multipart/related;boundary=mindspherepart\n\n--mindspherepart\n"
            "Content-Type:application/vnd.siemens.mindsphere.meta+json\n\n" + json.dumps(meta, indent=2) +
            "\n\n--mindspherepart\nContent-Type:application/json\n\n" + payload +
            "\n\n\r\n--mindspherepart--\n--mindspheremessage--\n").encode()


def node_headers(token, length):
    return ("POST /api/mindconnect/v3/exchange HTTP/1.1\r\nAccept: */*\r\nX-Powered-By: meowz\r\n"
            "User-Agent: mindconnect-nodejs (3.24.2)\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: multipart/mixed; boundary=mindspheremessage\r\nContent-Length: %d\r\n"
            "Host: localhost\r\nConnection: close\r\n\r\n" % (token, length)).encode()


def run(out_dir):
    rig = Rig(out_dir)  # puts lib/ on sys.path for the imports below
    try:
        return measure(rig)
    finally:
        rig.close()


def measure(rig):
    from mindconnect import agent, items
    from mindconnect.clock import iso8601
    from mindconnect.transport import Transport
    from tools.bench.mpy_workload import DESC, readings
    hub = rig.hub
    store = str(rig.work / "wire")
    shutil.copytree(rig.template, store)
    counting = CountingConnect(Transport(ca_der=hub.ca_der).connect)
    a = agent.Agent(store, counting)
    a.model = items.DataModel(DESC)
    a.authorize()  # the kept token; the request bytes below are the exchange alone
    before = counting.written
    rep = a.exchange(timeseries=readings(BATCH))
    if rep.count(agent.SENT) != BATCH:
        raise RuntimeError("the %d-reading exchange was not sent: %r" % (BATCH, rep.outcomes))
    ours = counting.written - before
    body = hub.exchanges(rig.client_id)[-1]["size"]
    token = a.authorize()
    a.close()
    node_b = [node_body("cfg-bench", iso8601(T0 + i * 1000), "20.5") for i in range(BATCH)]
    node_total = sum(len(b) + len(node_headers(token, len(b))) for b in node_b)
    node_body_total = sum(len(b) for b in node_b)

    cycles = []
    for label, key in (("first wake: onboard, token, DSC, exchange", True),
                       ("steady wake: kept token, exchange", False)):
        folder = str(rig.work / "cycle")
        if key:
            shutil.rmtree(folder, ignore_errors=True)
            created = hub.create_agent()["onboarding_key_json"]
        hub.reset_counters()
        a = agent.Agent(folder, Transport(ca_der=hub.ca_der).connect, onboarding_key=created)
        a.sync_model(items.DataModel(DESC))
        ev = items.event_record(2, "temp above 30", "ThresholdViolation", T0,
                                "1b4e28ba-2fa1-41d2-883f-0016d3cca427")
        rep = a.exchange([items.event_item([ev])], timeseries=readings(BATCH))
        a.close()
        if rep.count(agent.SENT) != BATCH:
            raise RuntimeError("cycle not sent: %r" % rep.outcomes)
        c = hub.counters()
        cycles.append((label, c["handshakes"], c["requests"]))
    lines = ["A %d-reading batch (one DOUBLE point per reading), bytes written to the TLS stream by our agent "
             "(request line, headers with the bearer token, body) against what mindconnect-nodejs sends for the "
             "same readings: one request per timestamp, LF framing, pretty-printed meta (PROTOCOL.md Part B; "
             "its headers with the same token length)." % BATCH, "",
             "| client | body bytes per reading | request bytes per reading |", "|---|---:|---:|",
             "| ours (one exchange) | %.1f | %.1f |" % (body / BATCH, ours / BATCH),
             "| Node client (%d requests) | %.1f | %.1f |" % (BATCH, node_body_total / BATCH, node_total / BATCH), "",
             "Ratio ours / Node, request bytes: **%.3f** (body bytes: %.3f)." % (
                 ours / node_total, body / node_body_total), "",
             "Connections per upload cycle (a new Agent on the store, as after a wake; sync_model, then "
             "%d readings and an event), counted by the mock:" % BATCH, "",
             "| cycle | TLS handshakes | requests | handshakes with one connection per call |",
             "|---|---:|---:|---:|"]
    lines += ["| %s | %d | %d | %d |" % (label, hs, req, req) for label, hs, req in cycles]
    return "\n".join(lines)
