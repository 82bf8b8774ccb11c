# The agent's memory budget, on both runtimes against tools/mockhub over real TLS: the whole cycle
# (onboard, token, data model, 1,000 readings from a spool, a 1 MB file, an event) runs in
# MPY_HEAPSIZE, and a 100,000-reading backlog peaks within 2 KB of a 1,000-reading one (heap sampled on
# the write path). Only what the device also needs is imported: the admin calls use the agent's own
# HTTP client, and the answer that creates a mock agent is taken as it streams by (create_agent), so the
# minimum is the agent's, not that of a 2 KB admin body.
# The MicroPython leg runs in device form (MPY_DEVICE_FORM = "rom"): the code is executed in place from a
# ROMFS image, as frozen into the firmware on a board. The process is started with -X heapsize =
# MPY_HEAPSIZE + the image, and the image takes exactly its own blocks first: the test gets the usable
# heap of a plain -X heapsize=MPY_HEAPSIZE process, no more (host_tests/mpyharness.py, tools/romboot.py).
import gc
import json

import dualtest
from mindconnect import agent as agentmod
from mindconnect import items
from mindconnect.http import HTTPClient
from mindconnect.spool import Spool
from mindconnect.transport import Transport

HOST_FIXTURES = ("mockhub_env",)
# The worst measured minimum + 3 KB, not the goal (64K): in ROM form the cycle passes at 73K, the backlog
# test at 74K with pytest's own tmp paths (both fail just below in the agent's onboarding), but at 73-79K
# with tmp paths of other lengths (the backlog's later runs read the token file into a heap split by the
# first run; CI's tmp paths are not ours), and just under the minimum a 1-3 KB allocation finds no
# contiguous room. From plain .mpy they need about 40 KB more. What is alive at the peak: docs/AGENT.md,
# "Memory".
# Lower this as the agent shrinks.
MPY_HEAPSIZE = "82K"
MPY_DEVICE_FORM = "rom"
T0 = 1764050571000
DESC = {"configurationId": "cfg-mem", "dataSources": [{"name": "env", "dataPoints": [
    {"id": "t", "name": "Temperature", "type": "DOUBLE", "unit": "C"}]}]}


def admin(method, path, sink=None):
    port = int(dualtest.env("MOCKHUB_ADMIN_URL").rsplit(":", 1)[1])
    c = HTTPClient(Transport(tls=False).connect, "127.0.0.1", port, max_body=4096)
    try:
        r = c.request(method, path, {"Content-Type": "application/json"} if method == "POST" else None,
                      "{}" if method == "POST" else None, sink=sink)
    finally:
        c.close()
    if r.status >= 300:
        raise AssertionError("admin %s %s: %d" % (method, path, r.status))
    return None if sink else r.json()


def create_agent():
    """POST /admin/agents: (client_id, onboarding key as JSON text). The answer (2 KB: it holds the key
    twice, as an object and as JSON text) streams by: only its head up to the end of the key object is
    kept (about 1 KB), so the test's own call needs no 2 KB body in one piece mid-test."""
    head = bytearray()
    st = [0, 0, 0, 0]  # depth, in a string, after a backslash, offset of the key object

    def sink(chunk):
        if st[3] < 0:
            return
        for j, c in enumerate(chunk):
            if st[1]:
                if st[2]:
                    st[2] = 0
                elif c == 92:
                    st[2] = 1
                elif c == 34:
                    st[1] = 0
            elif c == 34:
                st[1] = 1
            elif c == 123:
                st[0] += 1
                if st[0] == 2:
                    st[3] = len(head) + j
            elif c == 125:
                st[0] -= 1
                if st[0] == 1:  # the end of the first nested object: the onboarding key
                    head.extend(chunk[:j + 1])
                    st[3] = -st[3] - 1
                    return
        head.extend(chunk)

    admin("POST", "/admin/agents", sink)
    start = -st[3] - 1
    head.append(125)
    cid = json.loads(head)["client_id"]
    return cid, head[start:-1].decode()


def rows_stored(cid):
    """How many time series rows the mock stored (a JSON list of flat lists, counted as it streams by)."""
    opened = [0]

    def sink(chunk):
        opened[0] += bytes(chunk).count(b"[")

    admin("GET", "/admin/agents/%s/timeseries" % cid, sink)
    return opened[0] - 1


class SampledStream:
    """A transport stream that samples the heap every 16 writes while heap[0] holds a HeapPeak."""

    def __init__(self, stream, heap):
        self.stream = stream
        self.heap = heap
        self.writes = 0

    def write(self, buf):
        if self.heap[0] is not None and self.writes % 16 == 0:
            self.heap[0].sample()
        self.writes += 1
        return self.stream.write(buf)

    def readinto(self, buf):
        return self.stream.readinto(buf)

    def close(self):
        self.stream.close()


_transport = []  # one for the process, as a node has: its TLS context (3 KB in one piece) is made once


def new_agent(heap=None, **kw):
    """A fresh mock agent and ours; heap: [HeapPeak or None], sampled from the write path."""
    cid, key = create_agent()
    if not _transport:
        _transport.append(Transport(ca_der=dualtest.read_bytes(dualtest.env("MOCKHUB_CA_DER"))))
    t = _transport[0]

    def connect(host, port, timeout_ms):
        s = t.connect(host, port, timeout_ms)
        return SampledStream(s, heap) if heap is not None else s

    a = agentmod.Agent(dualtest.tmpdir() + "/store", connect, onboarding_key=key, **kw)
    return a, cid


def fill(spool, n, model):
    """n readings of one short value each, encoded against the model."""
    enc = items.RecordEncoder(model, 128)
    values = [("t", 0)]
    for i in range(n):
        values[0] = ("t", i % 100)
        spool.append(enc.encode(T0 + i * 1000, values))
    spool.flush()


def _blob(path, size):
    chunk = bytes(range(256)) * 16
    with open(path, "wb") as f:
        for _ in range(size // len(chunk)):
            f.write(chunk)


def test_whole_cycle_fits_the_default_heap():
    path = dualtest.tmpdir() + "/blob.bin"
    _blob(path, 1024 * 1024)
    a, cid = new_agent()
    model = items.DataModel(DESC)
    assert a.sync_model(model)
    spool = Spool(dualtest.tmpdir() + "/ts", max_bytes=256 * 1024, flush_every=None)
    fill(spool, 1000, model)
    ev = items.event_record(3, "cycle done", "Info", T0, "1b4e28ba-2fa1-41d2-883f-0016d3cca427")
    gc.collect()
    rep = a.exchange([items.event_item([ev]), items.file_item(path, T0)], timeseries=spool)
    a.close()
    assert [o.status for o in rep.outcomes] == [agentmod.SENT], rep.outcomes
    assert rep.count(agentmod.SENT) == 1000 and not spool.pending()
    spool.close()
    a = model = spool = ev = rep = None
    gc.collect()
    assert rows_stored(cid) == 1000
    files = admin("GET", "/admin/agents/%s/files" % cid)
    assert files[0][0] == "blob.bin" and files[0][1] == 1024 * 1024
    assert admin("GET", "/admin/agents/%s/events" % cid)[0]["description"] == "cycle done"


def _backlog_peak(n):
    heap = [None]
    a, _ = new_agent(heap, body_limit=1024 * 1024)
    model = items.DataModel(DESC)
    a.sync_model(model)
    spool = Spool(dualtest.tmpdir() + "/bl%d" % n, max_bytes=16 * 1024 * 1024, segment_bytes=1024 * 1024,
                  flush_every=None)
    fill(spool, n, model)
    a.close()  # both runs open their connection inside the window (filling can outlast the keep-alive)
    gc.collect()
    with dualtest.HeapPeak() as peak:
        heap[0] = peak
        rep = a.exchange(timeseries=spool)
        heap[0] = None
    a.close()
    statuses = [o.status for o in rep.outcomes]
    assert statuses == [agentmod.SENT] and rep.count(agentmod.SENT) == n, statuses  # one merged outcome
    assert not spool.pending() and peak.samples > rep.requests
    spool.close()
    return peak.peak, rep.requests


def test_backlog_of_100000_readings_peaks_like_1000():
    # The first run in a process starts with about 4 KB more alive at the window's start that its
    # exchange then frees (the heap in use at the first write is the same in every run), which would
    # hide that much growth: a 1,000-reading warm-up run comes first.
    _backlog_peak(1000)
    small, requests_small = _backlog_peak(1000)
    big, requests_big = _backlog_peak(100000)
    assert requests_small == 1 and requests_big > 3
    if dualtest.MICROPYTHON:  # on CPython tracemalloc would also count the mock hub in this process
        print("backlog peak: %d B for 1,000 readings, %d B for 100,000 (%d requests)" % (small, big, requests_big))
        assert big - small <= 2048, (small, big)
