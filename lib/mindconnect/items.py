"""What the agent sends: the data model, readings checked against it, and the exchange item kinds.

    DataModel(description)          data source configuration: validated, canonical JSON, hash, point types
    RecordEncoder(model)            one reading -> compact time series record, checked against the model
    ReadingStage(path, ...)         readings from an iterator staged on flash, handed out as batches
    AsideLog(path)                  where readings and batches the hub must not get are kept, with the reason
    timeseries_item, event_item, file_item, dsc_item, custom_item   multipart.Item of each kind

A reading is (timestamp_ms, values) with values a sequence of (data_point_id, value) or
(data_point_id, value, quality_code); timestamps are integer milliseconds since 1970 UTC.

Only what a wake cycle needs lives here. The rest is in modules loaded when asked for, so that its code
and messages are not in the heap on every cycle: the data model's rules and mapping bodies in
mindconnect.model (loaded for a DataModel and dropped after), ReadingStage, AsideLog, FileBatch and
reading_text in mindconnect.stage (items.<name> loads it).
"""

import sys

from mindconnect import jsonw, multipart
from mindconnect.clock import civil_from_days, iso8601, parse_iso8601
from mindconnect.compat import json_str, unload
from mindconnect.errors import ConfigError

_INT_LIMIT = 1 << 31
_LONG_LIMIT = 1 << 63
RECORD_MAX = 1024  # bytes of one encoded reading
_STAGE = ("ReadingStage", "AsideLog", "FileBatch", "reading_text")
_MODEL = ("mapping_body", "mappings_hash", "TYPES")


def __getattr__(name):
    """The names that live in the on-demand modules (see above), loaded on first use."""
    if name in _STAGE:
        from mindconnect import stage
        return getattr(stage, name)
    if name in _MODEL:
        from mindconnect import model
        return getattr(model, name)
    raise AttributeError(name)


class DataModel:
    """A data source configuration built from a description (dict as in PROTOCOL.md Part B §4).

    .config_id, .body (canonical compact JSON, bytes), .hash (hex of its SHA-256) and
    .points {data point id: (type, id as a JSON string literal in bytes)} for validating readings.
    ConfigError names the place of the first thing wrong. The rules are in mindconnect.model, loaded
    for the check and dropped after.
    """

    def __init__(self, description):
        loaded = "mindconnect.model" in sys.modules
        from mindconnect import model
        try:
            model.build(self, description)
        finally:
            model = None
            if not loaded:
                unload("model")


class InvalidReading(ConfigError):
    """A reading the hub would drop: .point names the data point, .reason says why."""

    def __init__(self, point, reason):
        super().__init__("data point %s: %s" % (point, reason))
        self.point = point
        self.reason = reason


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

    def __init__(self, model, size=None):
        if size is None:
            # RECORD_MAX, or more when a reading of every numeric point could need it (a value takes at
            # most 26 bytes, its quality code 10, their framing 44, and the id): a config of numeric
            # points never overflows it
            size = 52
            for kind, lit in model.points.values():
                if kind[-6:] != "STRING":
                    size += 80 + len(lit)
            size = max(size, RECORD_MAX)
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
