"""Store-and-forward on flash: readings (or events) survive power cuts and go out in order.

A Spool is a folder of segment files named by a counter ("1", "2", ...) and a cursor file ("cur").
Each record is framed as

    length  u16 little-endian (1..65535)
    crc     u32 little-endian, CRC-32 of the two length bytes followed by the record
    record  the bytes given to append()

Appends go to the newest segment through one preallocated buffer and reach the file system by the
flush policy (flush_every records and/or flush_ms since the first unflushed append). A full segment is
closed and a new one started; when the folder would exceed max_bytes the oldest segment is deleted and
the unacknowledged records it held are counted in .dropped.

The cursor (segment number, byte offset) says where unacknowledged data starts; it also holds the count
of records dropped by the full policy since the spool was made, so the count survives power cuts. It is
written to a temporary file and renamed over the old one, so it is either the old or the new value after a power
cut (littlefs and POSIX replace atomically on rename; FAT does not). A batch is read from the cursor and
streamed as a JSON array; ack() moves the cursor past it and deletes consumed segments.

Reopening after a crash: a missing or corrupt cursor falls back to the start of the oldest segment
(records may come again, none are skipped); a record that fails its length or CRC check ends its
segment: it and whatever follows it in that segment are skipped and counted once in .torn. See
docs/SPOOL.md for the guarantee.
"""

import binascii
import os

from mindconnect.compat import const, fsync_dir, fsync_file, ticks_diff
from mindconnect.compat import ticks_ms as _default_ticks_ms
from mindconnect.errors import ConfigError, ProtocolError

HEADER = const(6)
_MAX_RECORD = const(65535)
CURSOR = "cur"
CURSOR_TMP = "cur.tmp"
_CURSOR_LEN = const(16)  # segment, offset, dropped, CRC-32 of the 12 bytes before it
_OLD_CURSOR_LEN = const(12)  # segment, offset, CRC-32 (spools made before the drop count was kept)
_READ_BUF = const(256)
_COMMA = const(44)
_OPEN = const(91)
_CLOSE = const(93)
_ENOSPC = const(28)


def _u32(b, i):
    return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)


def _put_u32(b, i, v):
    b[i] = v & 0xFF
    b[i + 1] = (v >> 8) & 0xFF
    b[i + 2] = (v >> 16) & 0xFF
    b[i + 3] = (v >> 24) & 0xFF


def _crc(data, seed):
    return binascii.crc32(data, seed) & 0xFFFFFFFF


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


class Batch:
    """Consecutive records from the cursor, presented as one JSON array "[" rec "," rec ... "]".

    .length is the exact byte count of the array and .count the records in it; write_to(write) streams
    the array through the spool's read buffer and may be called again (a retry). A batch is valid until
    it is acknowledged or the full policy drops a segment it covers (write_to then raises).
    """

    def __init__(self, spool, origin, start, end, count, length):
        self._spool = spool
        self._origin = origin  # the cursor when the batch was taken
        self.start = start
        self.end = end
        self.count = count
        self.length = length

    def write_to(self, write):
        self._spool._stream(self, write)


class Spool:
    """A bounded, power-cut safe queue of opaque records on flash (see the module docstring)."""

    def __init__(self, path, max_bytes=512 * 1024, segment_bytes=None, flush_every=1, flush_ms=None,
                 ticks_ms=None, buf_bytes=512):
        if segment_bytes is None:
            segment_bytes = min(16384, max_bytes // 4)
        if segment_bytes < 64 or max_bytes < 2 * segment_bytes:
            raise ConfigError("spool %s: max_bytes (%d) must be at least twice segment_bytes (%d), "
                              "and segment_bytes at least 64" % (path, max_bytes, segment_bytes))
        if flush_every is not None and flush_every < 1:
            raise ConfigError("spool flush_every must be 1 or more (or None to flush by time only)")
        if buf_bytes < 64:
            raise ConfigError("spool buf_bytes must be at least 64")
        if not hasattr(binascii, "crc32"):
            raise ConfigError("this MicroPython build has no binascii.crc32, which the spool needs: "
                              "use a firmware built with it (the ESP32 builds have it)")
        self.path = path
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.flush_every = flush_every
        self.flush_ms = flush_ms
        self._ticks = ticks_ms or _default_ticks_ms
        self._wbuf = bytearray(buf_bytes)
        self._wmv = memoryview(self._wbuf)
        self._rbuf = bytearray(_READ_BUF)
        self._rmv = memoryview(self._rbuf)
        self._hdr = bytearray(_CURSOR_LEN)  # record headers and the cursor image
        self._hmv = memoryview(self._hdr)
        self._len_mv = self._hmv[:2]  # slices made once: appends allocate nothing for them
        self._head_mv = self._hmv[:HEADER]
        self._wpos = 0  # bytes waiting in _wbuf
        self._wcount = 0  # records waiting in _wbuf
        self._file = None  # the newest segment, open for appending
        self._synced = True
        self._synced_size = 0  # bytes of the newest segment committed by the last sync
        self._unsynced = 0  # records written to it since (another handle may not see them yet)
        self._since = 0  # ticks of the first unflushed append
        self._pending = None  # unacknowledged records; counted on first use, then kept up to date
        self.unflushed = 0
        self.dropped = 0  # records dropped by the full policy, ever (kept in the cursor file)
        self.torn = 0
        self.flash_writes = 0
        self.bytes_written = 0
        self.syncs = 0  # file syncs (littlefs commits), the costly part of a flush
        self._open()

    # ----- naming and small file helpers

    def _seg(self, n):
        return "%s/%d" % (self.path, n)

    def _seg_size(self, n):
        """Bytes of segment n on the file system (the newest: what was written so far), -1 if none."""
        if n == self._active:
            return self._file_size
        return _size(self._seg(n))

    def _next(self, n):
        """The segment after n: the next existing one, or the newest."""
        n += 1
        while n < self._active and _size(self._seg(n)) < 0:
            n += 1
        return n

    def _write(self, f, data):
        f.write(data)
        self.flash_writes += 1
        self.bytes_written += len(data)

    # ----- opening

    def _open(self):
        try:
            os.mkdir(self.path)
        except OSError:
            pass
        try:
            names = os.listdir(self.path)
        except OSError:
            raise ConfigError("spool folder %s cannot be created: check that its parent exists" % self.path) from None
        first = last = -1
        total = 0
        for name in names:
            if name == CURSOR_TMP:
                os.remove(self.path + "/" + name)
                continue
            if not name.isdigit():
                continue
            n = int(name)
            total += _size(self._seg(n))
            if first < 0 or n < first:
                first = n
            if n > last:
                last = n
        cur = self._read_cursor()
        if cur is not None:
            self.dropped = cur[2]
            cur = (cur[0], cur[1])
        if first < 0:
            start = cur[0] if cur else 1
            self._first = self._active = start
            self._cursor = (start, 0)
            self._file_size = 0
            self._total = 0
            return
        if cur is None or cur[0] > last + 1:
            cur = (first, 0)
        elif cur[0] < first:
            cur = (first, 0)
        else:
            size = _size(self._seg(cur[0]))
            if size < 0:  # a gap: start at the next segment that exists
                n = cur[0]
                while n <= last and _size(self._seg(n)) < 0:
                    n += 1
                cur = (n, 0)
            elif cur[1] > size:
                cur = (cur[0], 0)
            # segments before the cursor were consumed; a crash after the cursor was written left them
            while first < cur[0] and first <= last:
                size = _size(self._seg(first))
                if size >= 0:
                    os.remove(self._seg(first))
                    total -= size
                first += 1
        self._cursor = cur
        self._total = total
        self._first = first
        self._active = last
        self._file_size = 0
        if first > last:
            self._first = self._active = max(cur[0], last + 1)
            return
        # Continue the newest segment only if its tail is intact; otherwise start a fresh one and let
        # the reader find and count the torn record.
        size = _size(self._seg(last))
        off = cur[1] if cur[0] == last else 0
        with open(self._seg(last), "rb") as f:
            _, end, last_off = self._walk(f, off, size)
            clean = end == size and (last_off < 0 or self._record_ok(f, last_off, size))
        if clean and size < self.segment_bytes:
            self._file_size = self._synced_size = size
        else:
            self._active = last + 1
        if self._cursor[0] > self._active:
            self._active = self._cursor[0]

    def _read_cursor(self):
        """(segment, offset, dropped) from the cursor file, or None when it is missing or corrupt (the
        drop count then starts again from 0: a count is only a report, the position is what matters)."""
        h = self._hdr
        try:
            with open(self.path + "/" + CURSOR, "rb") as f:
                n = f.readinto(h)
                extra = f.read(1)
        except OSError:
            return None
        if extra:
            return None
        if n == _OLD_CURSOR_LEN and _crc(self._hmv[:8], 0) == _u32(h, 8):
            return (_u32(h, 0), _u32(h, 4), 0)
        if n != _CURSOR_LEN or _crc(self._hmv[:12], 0) != _u32(h, 12):
            return None
        return (_u32(h, 0), _u32(h, 4), _u32(h, 8))

    def _write_cursor(self, cur):
        h = self._hdr
        _put_u32(h, 0, cur[0])
        _put_u32(h, 4, cur[1])
        _put_u32(h, 8, self.dropped & 0xFFFFFFFF)
        _put_u32(h, 12, _crc(self._hmv[:12], 0))
        tmp = self.path + "/" + CURSOR_TMP
        with open(tmp, "wb") as f:
            self._write(f, h)
            fsync_file(f)
            self.syncs += 1
        os.rename(tmp, self.path + "/" + CURSOR)
        fsync_dir(self.path)
        self._cursor = cur

    # ----- reading the framing

    def _read_header(self, f, off, size):
        """Length of the record at off if its header is plausible (fits in size), else 0."""
        if off + HEADER > size:
            return 0
        f.seek(off)
        if f.readinto(self._head_mv) != HEADER:
            return 0
        n = self._hdr[0] | (self._hdr[1] << 8)
        if n == 0 or off + HEADER + n > size:
            return 0
        return n

    def _record_ok(self, f, off, size):
        """Length of the record at off if its header and CRC check out, else 0."""
        n = self._read_header(f, off, size)
        if not n:
            return 0
        want = _u32(self._hdr, 2)
        crc = _crc(self._len_mv, 0)
        mv = self._rmv
        cap = len(mv)
        left = n
        while left:
            chunk = mv if left >= cap else mv[:left]
            k = len(chunk)
            if f.readinto(chunk) != k:
                return 0
            crc = _crc(chunk, crc)
            left -= k
        return n if crc == want else 0

    def _walk(self, f, off, size):
        """Follow the headers from off: (records, end of the last plausible one, its offset or -1)."""
        count = 0
        last = -1
        while True:
            n = self._read_header(f, off, size)
            if not n:
                return count, off, last
            count += 1
            last = off
            off += HEADER + n

    def _count(self, start, end):
        """Records between two positions (header walk, nothing kept in RAM)."""
        seg, off = start
        count = 0
        while (seg, off) < end:
            size = self._seg_size(seg)
            limit = end[1] if seg == end[0] else size
            if size > 0 and off < limit:
                with open(self._seg(seg), "rb") as f:
                    count += self._walk(f, off, limit)[0]
            if seg >= self._active:
                break
            seg, off = self._next(seg), 0
        return count

    # ----- appending

    def append(self, record):
        """Queue one record (bytes, 1..65535 of them); it is on flash once the flush policy says so."""
        n = len(record)
        need = HEADER + n
        if n == 0 or n > _MAX_RECORD or need > self.max_bytes // 2:
            raise ConfigError("spool record of %d bytes: records must be 1 to %d bytes"
                              % (n, min(_MAX_RECORD, self.max_bytes // 2 - HEADER)))
        try:
            self._put(record, need)
        except OSError as e:
            self._refused(e)
            self._put(record, need)  # once more, with the room the oldest segment left
        self._total += need
        if self._pending is not None:
            self._pending += 1
        if not self.unflushed:
            self._since = self._ticks()
        self.unflushed += 1
        if self.flush_every is not None and self.unflushed >= self.flush_every:
            self.flush()
        else:
            self.tick()

    def _put(self, record, need):
        n = need - HEADER
        if self._file_size + self._wpos + need > self.segment_bytes and (self._file_size or self._wpos):
            self._roll()  # (a record bigger than a segment has a segment of its own)
        self._make_room(need)
        h = self._hdr
        h[0] = n & 0xFF
        h[1] = n >> 8
        _put_u32(h, 2, _crc(record, _crc(self._len_mv, 0)))
        wbuf = self._wbuf
        if self._wpos + need > len(wbuf):
            self._spill()
        if need > len(wbuf):
            f = self._append_file()
            self._write(f, self._head_mv)
            self._write(f, record)
            self._file_size += need
            self._unsynced += 1
            self._synced = False
        else:
            p = self._wpos
            wbuf[p:p + HEADER] = self._head_mv
            wbuf[p + HEADER:p + need] = record
            self._wpos = p + need
            self._wcount += 1

    def tick(self):
        """Flush when flush_ms have passed since the first unflushed append; call it from idle loops."""
        if self.unflushed and self.flush_ms is not None and ticks_diff(self._ticks(), self._since) >= self.flush_ms:
            self.flush()

    def flush(self):
        """Put every appended record on flash now."""
        try:
            self._sync()
        except OSError as e:
            self._refused(e)
            self._sync()

    def _sync(self):
        self._spill()
        if not self._synced:
            fsync_file(self._file)
            self.syncs += 1
            self._synced = True
            self._synced_size = self._file_size
            self._unsynced = 0
        self.unflushed = 0

    def close(self):
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _append_file(self):
        if self._file is None:
            self._file = open(self._seg(self._active), "ab")
        return self._file

    def _spill(self):
        """Write the buffered records to the newest segment (not yet synced)."""
        if not self._wpos:
            return
        self._write(self._append_file(), self._wmv[:self._wpos])
        self._file_size += self._wpos
        self._unsynced += self._wcount
        self._wpos = 0
        self._wcount = 0
        self._synced = False

    def _roll(self):
        """Close the newest segment and start the next one."""
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None
        self._active += 1
        self._file_size = self._synced_size = 0
        # a spool bigger than the flash left to it (other files, a second spool) still takes new
        # records: the oldest segments go (counted) while the file system has no room for a new one
        while self._first < self._active:
            try:
                st = os.statvfs(self.path)
            except (AttributeError, OSError):
                return
            if st[1] * st[4] >= self.segment_bytes + 4 * st[1]:
                return
            self._drop_first()

    def _refused(self, e):
        """A write failed. ENOSPC (the file system is full): what was written since the last sync is
        given up (the file system keeps the last synced state; counted in .dropped), the spool is read
        again from flash and the oldest segment makes room. Any other error is raised."""
        if e.args[0] != _ENOSPC:
            raise e
        active, synced, unsynced, dropped = self._active, self._synced_size, self._unsynced, self.dropped
        try:
            self._file.close()
        except (AttributeError, OSError):
            pass
        self._file = None
        self._synced_size = 0
        self._open()
        size = _size(self._seg(active))
        if size > synced:  # some of it reached flash after all
            with open(self._seg(active), "rb") as f:
                unsynced -= self._walk(f, synced, size)[0]
        self.dropped = dropped + max(0, unsynced)
        self._synced = True
        self._unsynced = 0
        self.unflushed = self._wcount
        self._pending = None
        if self._first < self._active:
            self._drop_first()

    def _make_room(self, need):
        """Drop the oldest segments until need more bytes fit in max_bytes."""
        while self._total + need > self.max_bytes and self._first < self._active:
            self._drop_first()

    def _drop_first(self):
        """Delete the oldest segment; its unacknowledged records are counted in .dropped."""
        first = self._first
        size = self._seg_size(first)
        lost = 0
        if size > 0 and self._cursor[0] <= first:
            off = self._cursor[1] if self._cursor[0] == first else 0
            with open(self._seg(first), "rb") as f:
                lost = self._walk(f, off, size)[0]
        nxt = self._next(first)
        self.dropped += lost
        if self._cursor[0] <= first:
            try:
                self._write_cursor((nxt, 0))  # with the new drop count, before the records go
            except OSError:
                self.dropped -= lost  # nothing went: a full flash's retry (_refused) counts them then
                raise
        if size >= 0:
            os.remove(self._seg(first))
            self._total -= size
        self._first = nxt
        if self._pending is not None:
            self._pending -= lost

    # ----- draining

    def pending(self):
        """Records appended and not yet acknowledged (counted once per open, then kept up to date)."""
        if self._pending is None:
            end = (self._active, self._synced_size)
            self._pending = self._count(self._cursor, end)
            self._pending += self._unsynced + self._wcount
        return self._pending

    def batch(self, max_bytes):
        """The next records as a Batch whose JSON array is at most max_bytes (at least one record), or
        None when nothing is queued. Flushes pending appends first."""
        self.flush()
        seg, off = self._cursor
        count = 0
        length = 1
        start = None
        while True:
            size = self._seg_size(seg)
            bad = False
            if off < size:
                with open(self._seg(seg), "rb") as f:
                    while off < size:
                        n = self._record_ok(f, off, size)
                        if not n:
                            bad = True
                            break
                        add = n + 1 if count else n
                        if count and length + add + 1 > max_bytes:
                            return Batch(self, self._cursor, start, (seg, off), count, length + 1)
                        if not count:
                            start = (seg, off)
                        length += add
                        count += 1
                        off += HEADER + n
            if bad:
                if count:
                    break
                self._skip_bad(seg, off)
                seg, off = self._cursor
                continue
            if seg >= self._active:
                break
            seg, off = self._next(seg), 0
        if not count:
            return None
        return Batch(self, self._cursor, start, (seg, off), count, length + 1)

    def _skip_bad(self, seg, off):
        """The record at off in seg failed its check, counted once. When its length leads to a record
        that checks out, only its payload was damaged (a bad write, worn flash): it alone is skipped.
        Else (a torn tail, a damaged length) the rest of seg is."""
        self.torn += 1
        self._pending = None
        size = self._seg_size(seg)
        with open(self._seg(seg), "rb") as f:
            n = self._read_header(f, off, size)
            if n and self._record_ok(f, off + HEADER + n, size):
                self._write_cursor((seg, off + HEADER + n))
                self._delete_before(seg)
                return
        if seg == self._active:
            self._roll()
        nxt = self._next(seg)
        self._write_cursor((nxt, 0))
        self._delete_before(nxt)

    def _delete_before(self, seg):
        while self._first < seg:
            size = _size(self._seg(self._first))
            if size >= 0:
                os.remove(self._seg(self._first))
                self._total -= size
            self._first += 1

    def ack(self, batch):
        """The server took the batch (2xx): move the cursor past it and delete consumed segments."""
        if batch._spool is not self:
            raise ConfigError("spool %s: this batch belongs to another spool" % self.path)
        end = batch.end
        if end <= self._cursor:
            return  # acknowledged already, or dropped by the full policy meanwhile
        if batch._origin == self._cursor:
            done = batch.count
        else:
            done = self._count(self._cursor, end)
        seg, off = end
        if seg < self._active and off >= self._seg_size(seg):
            seg, off = self._next(seg), 0
        self._write_cursor((seg, off))
        if self._pending is not None:
            self._pending -= done
        try:
            self._delete_before(seg)
        except OSError:
            pass  # a full flash refused the delete (littlefs commits one in a free block): the next ack

    def _stream(self, batch, write):
        seg, off = batch.start
        if seg < self._first or batch.end <= self._cursor:
            raise ProtocolError("spool batch is stale (acknowledged, or dropped to make room): take a new one")
        buf = self._rbuf
        mv = self._rmv
        cap = len(buf)
        buf[0] = _OPEN
        p = 1
        sent = 0
        left = batch.count
        while left:
            size = self._seg_size(seg)
            if size < 0:
                raise ProtocolError("spool segment %d vanished while a batch was sent: take a new batch" % seg)
            with open(self._seg(seg), "rb") as f:
                while left and off < size:
                    n = self._read_header(f, off, size)
                    if not n:
                        raise ProtocolError("spool segment %d changed while a batch was sent" % seg)
                    off += HEADER + n
                    if left != batch.count:
                        if p == cap:
                            write(mv[:p])
                            sent += p
                            p = 0
                        buf[p] = _COMMA
                        p += 1
                    while n:
                        if p == cap:
                            write(mv[:p])
                            sent += p
                            p = 0
                        k = cap - p if cap - p < n else n
                        if f.readinto(mv[p:p + k]) != k:
                            raise ProtocolError("spool segment %d shrank while a batch was sent" % seg)
                        p += k
                        n -= k
                    left -= 1
            seg, off = self._next(seg), 0
        if p == cap:
            write(mv[:p])
            sent += p
            p = 0
        buf[p] = _CLOSE
        write(mv[:p + 1])
        sent += p + 1
        if sent != batch.length:
            raise ProtocolError("spool batch was %d bytes, %d announced: take a new batch" % (sent, batch.length))
