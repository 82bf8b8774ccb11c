"""Readings that do not go straight from a spool: staged on flash from an iterator (ReadingStage), or
set aside with the reason (AsideLog). Rarely needed on a node (the app sends from its spool), so not in
the steady heap: items gives these names on first use (items.ReadingStage, items.AsideLog, ...).
"""

import os

from mindconnect import jsonw, multipart
from mindconnect.compat import const, fsync_file
from mindconnect.errors import ConfigError
from mindconnect.items import InvalidReading

_ENOSPC = const(28)


def reading_text(timestamp_ms, values):
    """A JSON rendering of a raw reading, for the aside log (not for the wire)."""
    try:
        return jsonw.dumpb([timestamp_ms, [list(v) for v in values]])
    except (TypeError, ValueError):
        return repr((timestamp_ms, values)).encode()


class AsideLog:
    """Append-only file of what was set aside: one line per entry, `{"kind","reason"} payload`.

    Kept for the firmware or a person to inspect and resend, within about max_bytes of flash: a log
    that has reached max_bytes / 2 becomes `<path>.1` (replacing the older one) before the next entry, so
    a sensor or a data model that is wrong for months cannot fill the flash the spools need (each of the
    two files is at most max_bytes / 2 plus one entry). An entry the file system refuses (full) is not
    kept: counted in .lost, the node carries on.
    """

    def __init__(self, path, max_bytes=64 * 1024):
        self.path = path
        self.max_bytes = max_bytes
        self.count = 0
        self.lost = 0

    def add(self, kind, reason, payload=b"", source=None):
        """Keep payload (bytes) or source (an object with write_to) with the reason; False if the
        file system refused it."""
        try:
            if os.stat(self.path)[6] >= self.max_bytes // 2:
                os.rename(self.path, self.path + ".1")
        except OSError:
            pass  # no log yet
        try:
            with open(self.path, "ab") as f:
                f.write(jsonw.dumpb(jsonw.Obj(("kind", kind), ("reason", reason))))
                f.write(b" ")
                if source is not None:
                    source.write_to(f.write)
                else:
                    f.write(payload)
                f.write(b"\n")
                fsync_file(f)
        except OSError as e:
            if e.args[0] != _ENOSPC:
                raise
            self.lost += 1
            return False
        self.count += 1
        return True


class FileBatch:
    """Records staged in a file (comma-separated), written as a JSON array: a time series payload."""

    def __init__(self, path, length, count):
        self.path = path
        self.count = count
        self.length = length + 2 if count else 0
        self.body = multipart.FileSource(path) if count else None

    def write_to(self, write):
        write(b"[")
        self.body.write_to(write)
        write(b"]")


class ReadingStage:
    """Readings from an iterator, checked and encoded into a staging file on flash, given out in batches.

    A batch is only removed by ack() (after the hub said 200); what was staged and not acknowledged
    is sent first by the next ReadingStage on the same path, so a failed upload loses nothing even
    though the iterator cannot be rewound. Invalid readings go to the aside log with the reason.
    """

    def __init__(self, path, encoder, readings, aside):
        self.path = path
        self.encoder = encoder
        self.readings = iter(readings) if readings is not None else iter(())
        self.aside = aside
        self.invalid = 0
        self.exhausted = False
        self._held = None  # a reading taken from the iterator that did not fit the last batch

    def _staged(self):
        try:
            size = os.stat(self.path)[6]
        except OSError:
            return 0, 0
        if size == 0:
            return 0, 0
        try:
            with open(self.path + ".n", "rb") as f:
                count = int(f.read() or b"0")
        except (OSError, ValueError):
            count = 0
        if not count:  # staged, and a power cut came before the count: count the records themselves
            count = self._count()
        return size, count

    def _count(self):
        """Records in the stage file: each starts with the same bytes, which JSON text cannot hold
        unescaped (a record torn by the cut is counted too: the hub refuses that batch, it goes aside)."""
        mark = b'{"timestamp":"'
        count = 0
        tail = b""
        with open(self.path, "rb") as f:
            while True:
                chunk = f.read(512)
                if not chunk:
                    return count
                chunk = tail + chunk
                count += chunk.count(mark)
                tail = chunk[-(len(mark) - 1):]

    def batch(self, max_bytes):
        """A FileBatch of at most max_bytes (payload length); count 0 when nothing is left."""
        size, count = self._staged()
        if count:
            if size + 2 > max_bytes:
                raise ConfigError("%d bytes of readings are staged in %s, over the %d allowed now; "
                                  "raise the body limit to send them" % (size, self.path, max_bytes))
            return FileBatch(self.path, size, count)
        size = 0
        with open(self.path, "wb") as f:
            while True:
                reading = self._held
                self._held = None
                if reading is None:
                    try:
                        reading = next(self.readings)
                    except StopIteration:
                        self.exhausted = True
                        break
                try:
                    rec = self.encoder.encode(reading[0], reading[1])
                except (InvalidReading, ConfigError) as e:  # ConfigError: over the encoder's buffer
                    self.invalid += 1
                    self.aside.add("reading", e.message, reading_text(reading[0], reading[1]))
                    continue
                if size + len(rec) + (1 if count else 0) + 2 > max_bytes:
                    self._held = reading  # for the next batch, which may have more room
                    if not count:
                        raise ConfigError("one reading (%d bytes) does not fit in %d bytes" % (len(rec), max_bytes))
                    break
                if count:
                    f.write(b",")
                    size += 1
                f.write(rec)
                size += len(rec)
                count += 1
            fsync_file(f)
        with open(self.path + ".n", "wb") as f:
            f.write(str(count).encode())
            fsync_file(f)
        return FileBatch(self.path, size, count)

    def ack(self, batch):
        """The hub took the batch: empty the stage (the file first: a stage with records and no count
        is one a power cut interrupted, see _staged)."""
        with open(self.path, "wb") as f:
            fsync_file(f)
        with open(self.path + ".n", "wb") as f:
            f.write(b"0")
            fsync_file(f)

    def pending(self):
        return self._staged()[1] > 0 or self._held is not None or not self.exhausted
