# The flash spool on both runtimes: exact batch bytes and order across reopen, the flush policies and
# what they write, the full policy's exact drop count, recovery from torn records and bad cursors, and
# flat heap for a 100,000-reading backlog.
import json
import os

import dualtest
from mindconnect.errors import ConfigError, ProtocolError
from mindconnect.spool import HEADER, Spool

# Above the default 64K: test_batch_is_the_exact_json_array_in_order needs 62K (bisections over five tmp-path
# lengths, 2026-12-06), at or within 2 KB of the default, where any change to lib/ or to this module
# failed it. Not a device budget: that is test_agent_memory's and test_fw_app_memory's.
MPY_HEAPSIZE = "68K"


def _folder(name="sp"):
    return dualtest.tmpdir() + "/" + name


def _reading(i):
    return b'{"timestamp":"2026-11-25T06:02:51.272Z","values":[{"dataPointId":"t","value":"%d","qualityCode":"0"}]}' % i


def _array(records):
    return b"[" + b",".join(records) + b"]"


def _bytes_of(batch):
    parts = []
    batch.write_to(lambda mv: parts.append(bytes(mv)))
    return b"".join(parts)


def _streams(batch, want):
    """Whether batch streams exactly want (compared piece by piece: no second copy in the heap)."""
    at = [0, True]

    def check(mv):
        n = len(mv)
        at[1] = at[1] and want[at[0]:at[0] + n] == bytes(mv)
        at[0] += n

    batch.write_to(check)
    return at[1] and at[0] == len(want)


def _values(batch):
    """Reading numbers in a batch (and a check that the array is valid JSON of the announced size)."""
    data = _bytes_of(batch)
    assert len(data) == batch.length, (len(data), batch.length)
    items = json.loads(data)
    assert len(items) == batch.count
    return [int(it["values"][0]["value"]) for it in items]


def _drain(sp, max_bytes=600):
    out = []
    while True:
        b = sp.batch(max_bytes)
        if b is None:
            return out
        out += _values(b)
        sp.ack(b)


def _segments(path):
    return sorted(int(n) for n in os.listdir(path) if n.isdigit())


def test_batch_is_the_exact_json_array_in_order():
    sp = Spool(_folder(), max_bytes=64 * 1024, segment_bytes=1024)
    recs = [_reading(i) for i in range(40)] + [b'{"big":"' + b"x" * 700 + b'"}']
    for r in recs:
        sp.append(r)
    b = sp.batch(100000)
    assert b.count == len(recs)
    want = _array(recs)
    assert b.length == len(want)
    assert _streams(b, want)
    assert _streams(b, want)  # a batch can be written again (retry)
    sizes = []
    b.write_to(lambda mv: sizes.append(len(mv)))
    assert max(sizes) <= 256  # streamed through the small read buffer, never whole
    sp.close()


def test_batch_respects_max_bytes_and_always_holds_one_record():
    sp = Spool(_folder(), max_bytes=64 * 1024, segment_bytes=4096)
    for i in range(30):
        sp.append(_reading(i))
    one = len(_reading(0))
    b = sp.batch(2 + 3 * one + 2)  # room for exactly three records
    assert (b.count, b.length) == (3, 2 + 3 * one + 2)
    assert _values(b) == [0, 1, 2]
    b = sp.batch(10)  # smaller than any record: still one
    assert b.count == 1 and b.length == one + 2
    sp.close()


def test_unacked_batch_stays_queued_and_order_survives_reopen():
    path = _folder()
    sp = Spool(path, max_bytes=64 * 1024, segment_bytes=512)
    for i in range(25):
        sp.append(_reading(i))
    assert sp.pending() == 25
    b = sp.batch(600)
    first = _values(b)
    assert first == list(range(len(first)))
    assert _values(sp.batch(600)) == first  # no ack: the same records again
    sp.close()
    sp = Spool(path, max_bytes=64 * 1024, segment_bytes=512)
    assert sp.pending() == 25
    b = sp.batch(600)
    assert _values(b) == first
    sp.ack(b)
    assert sp.pending() == 25 - len(first)
    sp.append(_reading(25))
    sp.close()
    sp = Spool(path, max_bytes=64 * 1024, segment_bytes=512)
    assert sp.pending() == 26 - len(first)
    assert _drain(sp) == list(range(len(first), 26))
    assert sp.pending() == 0 and sp.batch(600) is None
    assert len(_segments(path)) == 1  # consumed segments are deleted
    assert (sp.torn, sp.dropped) == (0, 0)
    sp.close()


def test_pending_counts_records_not_yet_synced():
    path = _folder()
    sp = Spool(path, max_bytes=64 * 1024, segment_bytes=4096, flush_every=None, buf_bytes=64)
    sp.append(b'{"n":0}')
    sp.close()
    sp = Spool(path, max_bytes=64 * 1024, segment_bytes=4096, flush_every=None, buf_bytes=64)
    for i in range(1, 10):
        sp.append(b'{"n":%d}' % i)  # the small buffer spills, but nothing is synced
    sp.append(b'{"big":"' + b"x" * 80 + b'"}')  # bigger than the buffer: written straight through
    sp.append(b'{"n":11}')
    assert sp.flash_writes > 0 and sp.syncs == 0
    assert sp.pending() == 12
    sp.append(b'{"n":12}')
    assert sp.pending() == 13
    b = sp.batch(10000)
    assert b.count == 13 and sp.unflushed == 0
    sp.ack(b)
    assert sp.pending() == 0
    sp.close()


def test_flush_every_n_writes_once_per_n_readings():
    sp = Spool(_folder(), max_bytes=64 * 1024, segment_bytes=4096, flush_every=4, buf_bytes=1024)
    rec = _reading(7)
    for _ in range(3):
        sp.append(rec)
    assert (sp.flash_writes, sp.bytes_written, sp.unflushed) == (0, 0, 3)
    sp.append(rec)
    assert (sp.flash_writes, sp.bytes_written, sp.unflushed) == (1, 4 * (HEADER + len(rec)), 0)
    for _ in range(8):
        sp.append(rec)
    assert (sp.flash_writes, sp.syncs) == (3, 3)
    sp.close()


def test_flush_every_one_writes_every_reading():
    sp = Spool(_folder(), max_bytes=64 * 1024, segment_bytes=4096)
    for i in range(5):
        sp.append(_reading(i))
        assert sp.unflushed == 0 and sp.flash_writes == i + 1
    sp.close()


def test_flush_ms_with_injected_clock():
    now = [1000]
    sp = Spool(_folder(), max_bytes=64 * 1024, segment_bytes=4096, flush_every=None, flush_ms=100,
               ticks_ms=lambda: now[0])
    sp.append(_reading(1))
    now[0] += 60
    sp.append(_reading(2))
    now[0] += 39
    sp.tick()
    assert (sp.flash_writes, sp.unflushed) == (0, 2)
    now[0] += 1  # 100 ms since the first unflushed append
    sp.tick()
    assert (sp.flash_writes, sp.unflushed) == (1, 0)
    sp.append(_reading(3))
    now[0] += 150
    sp.append(_reading(4))  # checked on append too
    assert (sp.flash_writes, sp.unflushed) == (2, 0)
    sp.close()


def test_full_spool_drops_oldest_segments_with_exact_count():
    path = _folder()
    rec_len = HEADER + len(_reading(100))
    sp = Spool(path, max_bytes=2048, segment_bytes=512)
    per_segment = 512 // rec_len
    for i in range(100, 110):  # ack a few of the oldest segment: those are not counted as dropped
        sp.append(_reading(i))
    b = sp.batch(3 * rec_len)
    acked = b.count
    sp.ack(b)
    for i in range(110, 400):
        sp.append(_reading(i))
        size = 0
        for n in _segments(path):
            size += os.stat("%s/%d" % (path, n))[6]
        assert size <= 2048
    got = _drain(sp)
    assert got == list(range(400 - len(got), 400))  # the newest survive, in order
    assert sp.dropped == 300 - acked - len(got)  # exact: every record lost, none acked
    assert (sp.dropped + acked) % per_segment == 0  # whole segments went
    sp.close()


def test_stale_batch_after_drop_is_refused():
    sp = Spool(_folder(), max_bytes=1024, segment_bytes=512)
    sp.append(_reading(0))
    b = sp.batch(1000)
    for i in range(1, 40):
        sp.append(_reading(i))
    assert sp.dropped >= 1
    dualtest.raises(ProtocolError, b.write_to, lambda mv: None)
    sp.ack(b)  # harmless: the cursor is already past it
    got = _drain(sp)
    assert got[-1] == 39 and sp.dropped + len(got) == 40
    sp.close()


def test_drop_count_survives_a_power_cut_and_old_cursor_files_still_open():
    # The count is what the node reports as node_dropped: a power cut must not zero it (it is written
    # with the cursor move that drops the records, in the same atomic rename).
    path = _folder()
    sp = Spool(path, max_bytes=1024, segment_bytes=512)
    for i in range(40):
        sp.append(_reading(i))
    dropped = sp.dropped
    assert dropped >= 1
    del sp  # a power cut: no close()
    sp = Spool(path, max_bytes=1024, segment_bytes=512)
    assert sp.dropped == dropped
    got = _drain(sp)
    assert got[-1] == 39 and dropped + len(got) == 40
    sp.close()
    # a cursor file of the earlier 12-byte form (segment, offset, CRC): position kept, count from 0
    import binascii
    old = bytearray(dualtest.read_bytes(path + "/cur")[:12])  # segment, offset, count (then a CRC)
    assert len(old) == 12 and old[8] == dropped
    crc = binascii.crc32(bytes(old[:8])) & 0xFFFFFFFF
    for k in range(4):
        old[8 + k] = (crc >> (8 * k)) & 0xFF
    dualtest.write_bytes(path + "/cur", bytes(old))
    sp = Spool(path, max_bytes=1024, segment_bytes=512)
    assert sp.dropped == 0 and sp.pending() == 0
    sp.append(_reading(41))
    assert _drain(sp) == [41]
    sp.close()


def _fill_segments(path, n, segment_bytes=512):
    sp = Spool(path, max_bytes=64 * 1024, segment_bytes=segment_bytes)
    for i in range(n):
        sp.append(_reading(i))
    sp.close()
    return _segments(path)


def test_torn_tail_is_counted_skipped_and_appends_continue():
    path = _folder()
    segs = _fill_segments(path, 10)
    last = "%s/%d" % (path, segs[-1])
    data = dualtest.read_bytes(last)
    dualtest.write_bytes(last, data[:-5])  # the last record lost its end in a power cut
    sp = Spool(path, max_bytes=64 * 1024, segment_bytes=512)
    sp.append(_reading(100))  # goes to a fresh segment, after the torn one
    assert _drain(sp) == list(range(9)) + [100]
    assert sp.torn == 1
    sp.close()
    sp = Spool(path, max_bytes=64 * 1024, segment_bytes=512)
    assert sp.pending() == 0 and sp.batch(600) is None and sp.torn == 0
    sp.close()


def test_header_only_tail_and_crc_damage_are_torn_records():
    path = _folder()
    segs = _fill_segments(path, 12)
    assert len(segs) >= 3
    first = "%s/%d" % (path, segs[0])
    data = bytearray(dualtest.read_bytes(first))
    rec_len = HEADER + len(_reading(0))
    data[2 * rec_len + HEADER + 10] ^= 0x01  # a flipped bit in the third record's payload
    dualtest.write_bytes(first, bytes(data))
    last = "%s/%d" % (path, segs[-1])
    dualtest.write_bytes(last, dualtest.read_bytes(last) + b"\x07\x00")  # half a header
    sp = Spool(path, max_bytes=64 * 1024, segment_bytes=512)
    got = _drain(sp)
    assert got == [0, 1] + list(range(3, 12))  # the damaged payload costs its record, not its segment
    assert sp.torn == 2
    sp.close()


def test_a_damaged_record_in_the_newest_segment_costs_only_itself():
    # bit rot in the middle of the segment the spool goes on appending to after a restart: the readings
    # written after it (each flushed) must all arrive
    path = _folder()
    sp = Spool(path, max_bytes=64 * 1024, segment_bytes=4096)
    for i in range(5):
        sp.append(_reading(i))
    sp.close()
    seg = "%s/%d" % (path, _segments(path)[-1])
    data = bytearray(dualtest.read_bytes(seg))
    data[HEADER + len(_reading(0)) + HEADER + 5] ^= 0x01  # the second record's payload
    dualtest.write_bytes(seg, bytes(data))
    sp = Spool(path, max_bytes=64 * 1024, segment_bytes=4096)
    for i in range(100, 110):
        sp.append(_reading(i))
    assert _drain(sp) == [0, 2, 3, 4] + list(range(100, 110))
    assert sp.torn == 1
    sp.close()


def _ack_some(path, n_acked):
    sp = Spool(path, max_bytes=64 * 1024, segment_bytes=512)
    b = sp.batch(2 + n_acked * (len(_reading(0)) + 1))
    assert b.count == n_acked
    sp.ack(b)
    sp.close()


def test_corrupt_or_missing_cursor_falls_back_without_skipping():
    rec_len = HEADER + len(_reading(0))
    per_segment = 512 // rec_len
    for damage in ("garbage", "short", "missing"):
        path = _folder(damage)
        _fill_segments(path, 20)
        _ack_some(path, per_segment + 2)  # the cursor is inside the second segment
        cur = path + "/cur"
        if damage == "garbage":
            data = bytearray(dualtest.read_bytes(cur))
            data[5] ^= 0xFF
            dualtest.write_bytes(cur, bytes(data))
        elif damage == "short":
            dualtest.write_bytes(cur, dualtest.read_bytes(cur)[:7])
        else:
            os.remove(cur)
        sp = Spool(path, max_bytes=64 * 1024, segment_bytes=512)
        # back to the start of the oldest segment still on flash: some repeats, nothing skipped
        assert _drain(sp) == list(range(per_segment, 20)), damage
        sp.close()


def test_cursor_is_replaced_atomically_with_no_temp_left():
    path = _folder()
    _fill_segments(path, 5)
    _ack_some(path, 2)
    names = os.listdir(path)
    assert "cur" in names and "cur.tmp" not in names
    dualtest.write_bytes(path + "/cur.tmp", b"half-written")  # a crash during the cursor write
    sp = Spool(path, max_bytes=64 * 1024, segment_bytes=512)
    assert _drain(sp) == [2, 3, 4]
    assert "cur.tmp" not in os.listdir(path)
    sp.close()


def test_a_record_bigger_than_a_segment_gets_a_segment_of_its_own():
    # The default segment is a quarter of max_bytes: 1 KB for the smallest spool the node's config
    # allows, where a reading of 16 data points, or an event with a long description, is bigger. Such a
    # record was refused (ConfigError), which the node does not expect from an append: it restarted at
    # every sample. Up to half of max_bytes, a record takes a segment of its own.
    path = _folder()
    sp = Spool(path, max_bytes=4096, segment_bytes=1024)
    for i in range(2):
        sp.append(_reading(i))
        sp.append(_big(i))
    sp.close()
    sp = Spool(path, max_bytes=4096, segment_bytes=1024)  # a restart after an oversized segment
    sp.append(_reading(2))
    sp.append(_big(2))
    assert sp.pending() == 6
    assert _drain(sp, 100000) == [0, 0, 1, 1, 2, 2]
    for i in range(3, 9):
        sp.append(_reading(i))
        sp.append(_big(i))
        size = 0
        for n in _segments(path):
            size += os.stat("%s/%d" % (path, n))[6]
        assert size <= 4096
    got = _drain(sp, 100000)
    want = [i // 2 for i in range(6, 18)]
    assert got == want[12 - len(got):] and sp.dropped == 12 - len(got), (got, sp.dropped)
    sp.close()


def _big(i):
    """A reading of about 1.1 to 1.5 KB."""
    return b'{"values":[{"dataPointId":"t","value":"%d","pad":"%s"}]}' % (i, b"p" * (1100 + 50 * i))


def test_refuses_bad_configuration_and_records():
    dualtest.raises(ConfigError, Spool, _folder("a"), max_bytes=1000, segment_bytes=600)
    dualtest.raises(ConfigError, Spool, _folder("b"), flush_every=0)
    sp = Spool(_folder("c"), max_bytes=4096, segment_bytes=1024)
    dualtest.raises(ConfigError, sp.append, b"")
    dualtest.raises(ConfigError, sp.append, b"x" * (2048 - HEADER + 1))  # over half of max_bytes
    other = Spool(_folder("d"), max_bytes=4096, segment_bytes=1024)
    other.append(b"{}")
    dualtest.raises(ConfigError, sp.ack, other.batch(100))
    sp.close()
    other.close()


class _CountingSink:
    def __init__(self, heap):
        self.heap = heap
        self.n = 0
        self.writes = 0

    def write(self, mv):
        self.n += len(mv)
        self.writes += 1
        if self.writes % 16 == 0:
            self.heap.sample()


def _append_and_drain(n, name):
    rec = bytearray(b'{"n":00000}')
    sp = Spool(_folder(name), max_bytes=4 * 1024 * 1024, segment_bytes=64 * 1024, flush_every=100)
    with dualtest.HeapPeak() as heap:
        for i in range(n):
            v = i
            for k in range(9, 4, -1):
                rec[k] = 48 + v % 10
                v //= 10
            sp.append(rec)
            if i % 512 == 0:
                heap.sample()
        sink = _CountingSink(heap)
        count = 0
        while True:
            b = sp.batch(16 * 1024)
            if b is None:
                break
            b.write_to(sink.write)
            count += b.count
            sp.ack(b)
            heap.sample()
    assert count == n and sp.pending() == 0
    assert sink.n > n * len(rec)
    sp.close()
    return heap.peak


def test_heap_flat_for_100k_readings_vs_1k():
    small = _append_and_drain(1000, "k1")
    big = _append_and_drain(100000, "k100")
    assert big - small <= 2048, (small, big)


def _full_once(name):
    """An open() for the spool module that refuses (ENOSPC) the first write of a file whose name ends
    with name, as a full flash does; the spool's own open() again after that."""
    import mindconnect.spool as spool_mod

    def refuse(path, mode="r"):
        if path.endswith(name) and "r" not in mode:
            del spool_mod.open
            raise OSError(28, "no space left on device")
        return open(path, mode)

    spool_mod.open = refuse


def test_a_full_flash_refusing_the_drop_cursor_counts_each_dropped_record_once():
    # The full policy writes the cursor (with the new drop count) before it deletes the oldest segment;
    # a full flash refusing that write made the spool recover and drop that segment again, and its
    # records were counted twice in node_dropped (on flash too, so after a restart as well).
    path = _folder()
    sp = Spool(path, max_bytes=1024, segment_bytes=512)
    i = 0
    while len(_segments(path)) < 3:  # full: the next segment drops the oldest
        sp.append(_reading(i))
        i += 1
    before = len(_segments(path))
    _full_once("cur.tmp")
    while len(_segments(path)) >= before:  # until the oldest segment went
        sp.append(_reading(i))
        i += 1
    got = _drain(sp)
    assert got[-1] == i - 1 and got == list(range(got[0], i))
    assert sp.dropped == got[0], (sp.dropped, got[0])  # every record before the first one left, once
    sp.close()
    sp = Spool(path, max_bytes=1024, segment_bytes=512)
    assert sp.dropped == got[0]
    sp.close()
