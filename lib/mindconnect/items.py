"""What the agent sends: the data model, readings checked against it, and the exchange item kinds.

    DataModel(description)          data source configuration: validated, canonical JSON, hash, point types
    RecordEncoder(model)            one reading -> compact time series record, checked against the model
    ReadingStage(path, ...)         readings from an iterator staged on flash, handed out as batches
    AsideLog(path)                  where readings and batches the hub must not get are kept, with the reason
    timeseries_item, event_item, file_item, dsc_item, custom_item   multipart.Item of each kind

A reading is (timestamp_ms, values) with values a sequence of (data_point_id, value) or
(data_point_id, value, quality_code); timestamps are integer milliseconds since 1970 UTC.
"""

import binascii
import hashlib
import os

from mindconnect import jsonw, multipart
from mindconnect.clock import civil_from_days, iso8601, parse_iso8601
from mindconnect.compat import fsync_file, json_str
from mindconnect.errors import ConfigError

TYPES = ("INT", "LONG", "DOUBLE", "BOOLEAN", "STRING", "BIG_STRING", "TIMESTAMP")
_INT_LIMIT = 1 << 31
_LONG_LIMIT = 1 << 63
RECORD_MAX = 1024  # bytes of one encoded reading


class InvalidReading(ConfigError):
    """A reading the hub would drop: .point names the data point, .reason says why."""

    def __init__(self, point, reason):
        super().__init__("data point %s: %s" % (point, reason))
        self.point = point
        self.reason = reason


def _need_str(d, key, where, limit):
    v = d.get(key)
    if not isinstance(v, str) or not v or len(v) > limit:
        raise ConfigError("%s: '%s' must be a non-empty string of at most %d characters" % (where, key, limit))
    return v


class DataModel:
    """A data source configuration built from a description (dict as in PROTOCOL.md Part B §4).

    .config_id, .body (canonical compact JSON, bytes), .hash (hex of its SHA-256) and
    .points {data point id: (type, id as a JSON string literal in bytes)} for validating readings.
    """

    def __init__(self, description):
        self.config_id = _need_str(description, "configurationId", "data model", 36)
        sources = description.get("dataSources")
        if not isinstance(sources, (list, tuple)) or not sources:
            raise ConfigError("data model: 'dataSources' must be a non-empty list")
        self.points = {}
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
                if dp_id in self.points:
                    raise ConfigError(where + ": the id is used twice; data point ids must be unique")
                self.points[dp_id] = (dp_type, json_str(dp_id).encode())
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
        self.body = jsonw.dumpb(jsonw.Obj(("configurationId", self.config_id), ("dataSources", out)))
        self.hash = binascii.hexlify(hashlib.sha256(self.body).digest()).decode()


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


# -- readings ------------------------------------------------------------------------------------

_TS_HEAD = b'{"timestamp":"'
_VALUES = b'","values":['
_DP = b'{"dataPointId":'
_VALUE = b',"value":'
_QC = b',"qualityCode":"'
_TAIL = b"]}"


class RecordEncoder:
    """Checks readings against a DataModel and writes the compact record into one preallocated buffer.

    encode() returns a memoryview valid until the next call; nothing per reading is kept.
    """

    def __init__(self, model, size=RECORD_MAX):
        self.model = model
        self.buf = bytearray(size)
        self.mv = memoryview(self.buf)
        self.pos = 0

    def _put(self, b):
        n = len(b)
        end = self.pos + n
        if end > len(self.buf):
            raise ConfigError("a reading needs more than %d bytes encoded; split it" % len(self.buf))
        self.mv[self.pos:end] = b
        self.pos = end

    def _digits(self, v, width=1):
        """Decimal digits of int v (at least width of them, zero-padded), without making a string."""
        if v < 0:
            self._put(b"-")
            v = -v
        n = 1
        while v >= 10 ** n:
            n += 1
        if n < width:
            n = width
        end = self.pos + n
        if end > len(self.buf):
            raise ConfigError("a reading needs more than %d bytes encoded; split it" % len(self.buf))
        i = end
        while i > self.pos:
            i -= 1
            self.buf[i] = 48 + v % 10
            v //= 10
        self.pos = end

    def _timestamp(self, ms):
        secs, milli = divmod(ms, 1000)
        days, rem = divmod(secs, 86400)
        y, mo, d = civil_from_days(days)
        self._digits(y, 4)
        self._put(b"-")
        self._digits(mo, 2)
        self._put(b"-")
        self._digits(d, 2)
        self._put(b"T")
        self._digits(rem // 3600, 2)
        self._put(b":")
        self._digits(rem // 60 % 60, 2)
        self._put(b":")
        self._digits(rem % 60, 2)
        self._put(b".")
        self._digits(milli, 3)
        self._put(b"Z")

    def _value(self, point, kind, v):
        if kind == "INT" or kind == "LONG":
            limit = _INT_LIMIT if kind == "INT" else _LONG_LIMIT
            if not isinstance(v, int) or isinstance(v, bool):
                raise InvalidReading(point, "%s needs an integer, got %s" % (kind, type(v).__name__))
            if not -limit <= v < limit:
                raise InvalidReading(point, "%d is out of range for %s" % (v, kind))
            self._put(b'"')
            self._digits(v)
            self._put(b'"')
        elif kind == "DOUBLE":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InvalidReading(point, "DOUBLE needs a number, got %s" % type(v).__name__)
            self._put(b'"')
            if isinstance(v, int):
                self._digits(v)
            else:
                if v != v or v in (float("inf"), float("-inf")):
                    raise InvalidReading(point, "DOUBLE must be a finite number")
                self._put(repr(v).encode())
            self._put(b'"')
        elif kind == "BOOLEAN":
            if not isinstance(v, bool):
                raise InvalidReading(point, "BOOLEAN needs True or False, got %s" % type(v).__name__)
            self._put(b'"true"' if v else b'"false"')
        elif kind == "TIMESTAMP":
            if isinstance(v, str):
                try:
                    v = parse_iso8601(v)
                except ValueError as e:
                    raise InvalidReading(point, str(e)) from None
            if not isinstance(v, int) or isinstance(v, bool):
                raise InvalidReading(point, "TIMESTAMP needs milliseconds or an ISO-8601 text")
            self._put(b'"')
            self._timestamp(v)
            self._put(b'"')
        else:  # STRING, BIG_STRING
            if not isinstance(v, str):
                raise InvalidReading(point, "%s needs a text, got %s" % (kind, type(v).__name__))
            self._put(json_str(v).encode())

    def encode(self, timestamp_ms, values):
        """The record of one reading (memoryview); InvalidReading names the first bad data point."""
        points = self.model.points
        if not isinstance(timestamp_ms, int) or isinstance(timestamp_ms, bool) or timestamp_ms < 0:
            raise InvalidReading("(timestamp)", "the timestamp must be integer milliseconds since 1970 UTC")
        self.pos = 0
        self._put(_TS_HEAD)
        self._timestamp(timestamp_ms)
        self._put(_VALUES)
        first = True
        for entry in values:
            point = entry[0]
            spec = points.get(point)
            if spec is None:
                raise InvalidReading(point, "not in data model %s" % self.model.config_id)
            if not first:
                self._put(b",")
            first = False
            self._put(_DP)
            self._put(spec[1])
            self._put(_VALUE)
            self._value(point, spec[0], entry[1])
            self._put(_QC)
            quality = entry[2] if len(entry) > 2 else 0
            if isinstance(quality, int) and not isinstance(quality, bool) and quality >= 0:
                self._digits(quality)
            else:
                raise InvalidReading(point, "the quality code must be an integer >= 0")
            self._put(b'"}')
        if first:
            raise InvalidReading("(none)", "a reading needs at least one value")
        self._put(_TAIL)
        return self.mv[:self.pos]


def reading_text(timestamp_ms, values):
    """A JSON rendering of a raw reading, for the aside log (not for the wire)."""
    try:
        return jsonw.dumpb([timestamp_ms, [list(v) for v in values]])
    except (TypeError, ValueError):
        return repr((timestamp_ms, values)).encode()


class AsideLog:
    """Append-only file of what was set aside: one line per entry, `{"kind","reason"} payload`.

    Nothing set aside is lost: the firmware or a person can inspect and resend it.
    """

    def __init__(self, path):
        self.path = path
        self.count = 0

    def add(self, kind, reason, payload=b"", source=None):
        """Keep payload (bytes) or source (an object with write_to) with the reason."""
        with open(self.path, "ab") as f:
            f.write(jsonw.dumpb(jsonw.Obj(("kind", kind), ("reason", reason))))
            f.write(b" ")
            if source is not None:
                source.write_to(f.write)
            else:
                f.write(payload)
            f.write(b"\n")
            fsync_file(f)
        self.count += 1


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
        with open(self.path + ".n", "rb") as f:
            count = int(f.read() or b"0")
        return size, count

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
                except InvalidReading as e:
                    self.invalid += 1
                    self.aside.add("reading", e.message, reading_text(reading[0], reading[1]))
                    continue
                if size + len(rec) + (1 if count else 0) + 2 > max_bytes:
                    if not count:
                        raise ConfigError("one reading (%d bytes) does not fit in %d bytes" % (len(rec), max_bytes))
                    self._held = reading
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
        """The hub took the batch: empty the stage."""
        with open(self.path + ".n", "wb") as f:
            f.write(b"0")
            fsync_file(f)

    def pending(self):
        return self._staged()[1] > 0 or self._held is not None or not self.exhausted


# -- exchange items ------------------------------------------------------------------------------

JSON = "application/json"
OCTETS = "application/octet-stream"


def timeseries_item(config_id, source):
    """source: anything with .length and .write_to (a spool batch, a FileBatch, multipart.BytesSource)."""
    return multipart.Item("standardTimeSeries", "1.0", JSON, source,
                          details=jsonw.Obj(("configurationId", config_id)))


def event_record(severity, description, event_type, timestamp_ms, event_id, version="1.0", details=None,
                 correlation_id=None):
    """One businessEvent (bytes). severity 1 error, 2 warning, 3 info."""
    if severity not in (1, 2, 3):
        raise ConfigError("event severity must be 1 (error), 2 (warning) or 3 (info)")
    if not isinstance(description, str) or len(description) > 255:
        raise ConfigError("event description must be a text under 256 characters")
    pairs = [("id", event_id)]
    if correlation_id:
        pairs.append(("correlationId", correlation_id))
    pairs += [("timestamp", iso8601(timestamp_ms)), ("severity", severity), ("description", description),
              ("type", event_type), ("version", version), ("details", details if details is not None else {})]
    return jsonw.dumpb(jsonw.Obj(*pairs))


def event_item(records):
    """records: event_record() bytes (a list), or a source with .length/.write_to (an event spool batch)."""
    if isinstance(records, (list, tuple)):
        records = multipart.BytesSource(b"[" + b",".join(records) + b"]")
    return multipart.Item("businessEvent", "1.0", JSON, records)


def file_item(path, creation_ms, name=None, file_type=None):
    """A file streamed from flash; name defaults to the last part of the path."""
    if name is None:
        name = path.rsplit("/", 1)[-1]
    details = [("fileName", name), ("creationDate", iso8601(creation_ms))]
    if file_type:
        details.append(("fileType", file_type))
    return multipart.Item("file", "1.0", OCTETS, multipart.FileSource(path), details=jsonw.Obj(*details))


def dsc_item(model):
    return multipart.Item("dataSourceConfiguration", "1.0", JSON, multipart.BytesSource(model.body))


def custom_item(item_type, version, content_type, data, details=None):
    """data: bytes/str or a source with .length/.write_to."""
    if isinstance(data, (bytes, bytearray, str)):
        data = multipart.BytesSource(data)
    return multipart.Item(item_type, version, content_type, data, details=details)
