"""True UTC time: ISO-8601 with milliseconds, HTTP dates, and the skew against the gateway.

All times are integers (milliseconds or seconds since 1970-01-01 UTC): ESP32 floats are single
precision. Calendar arithmetic is done here (days from civil dates) rather than with time.gmtime,
whose epoch differs between ports.
"""

from mindconnect.compat import unix_ms
from mindconnect.errors import msg

# The wording of its errors, one line each, taken by msg(_W, line): one str constant, not one per message
# (in ROM form each str constant over 10 characters is an object of about 40 B in the heap; docs/AGENT.md).
_W = ("bad %s in timestamp\n"  # 0
      "timestamp must look like 2026-11-25T06:02:51.272Z\n"
      "bad fraction in timestamp\n"
      "timestamp out of range\n"
      "not an HTTP date\n"
      "clock differs from the gateway's %s by %d s; check NTP")  # 5

# A clock reading before 2024-01-01 is treated as unset (a board that has not had NTP yet).
MIN_VALID_MS = 1704067200000
SKEW_WARN_S = 60

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of the proleptic Gregorian date y-m-d."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z):
    """(year, month, day) of a day count since 1970-01-01."""
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2), m, d


def iso8601(ms):
    """'YYYY-MM-DDTHH:MM:SS.mmmZ' for integer milliseconds since the epoch."""
    ms = int(ms)
    secs, milli = divmod(ms, 1000)
    days, rem = divmod(secs, 86400)
    y, mo, d = civil_from_days(days)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (y, mo, d, rem // 3600, rem // 60 % 60, rem % 60, milli)


def _int(s, what):
    try:
        return int(s)
    except ValueError:
        raise ValueError(msg(_W, 0) % what) from None


def parse_iso8601(s):
    """Milliseconds since the epoch of 'YYYY-MM-DDTHH:MM:SS[.fff]Z'; ValueError otherwise."""
    if len(s) < 20 or s[4] != "-" or s[7] != "-" or s[10] != "T" or s[13] != ":" or s[16] != ":" \
            or s[-1] != "Z":
        raise ValueError(msg(_W, 1))
    y, mo, d = _int(s[0:4], "year"), _int(s[5:7], "month"), _int(s[8:10], "day")
    hh, mm, ss = _int(s[11:13], "hour"), _int(s[14:16], "minute"), _int(s[17:19], "second")
    frac = s[19:-1]
    milli = 0
    if frac:
        if frac[0] != "." or len(frac) < 2 or not frac[1:].isdigit():
            raise ValueError(msg(_W, 2))
        milli = int((frac[1:] + "00")[:3])
    if not (1 <= mo <= 12 and 1 <= d <= 31 and hh < 24 and mm < 60 and ss < 61):
        raise ValueError(msg(_W, 3))
    return ((days_from_civil(y, mo, d) * 86400) + hh * 3600 + mm * 60 + ss) * 1000 + milli


def parse_http_date(s):
    """Seconds since the epoch of an IMF-fixdate ('Sun, 06 Nov 1994 08:49:37 GMT'); ValueError otherwise."""
    parts = s.strip().split()
    if len(parts) != 6 or parts[5] != "GMT" or parts[2] not in _MONTHS:
        raise ValueError(msg(_W, 4))
    hms = parts[4].split(":")
    if len(hms) != 3:
        raise ValueError(msg(_W, 4))
    day = days_from_civil(_int(parts[3], "year"), _MONTHS.index(parts[2]) + 1, _int(parts[1], "day"))
    return day * 86400 + _int(hms[0], "hour") * 3600 + _int(hms[1], "minute") * 60 + _int(hms[2], "second")


def http_date(secs):
    """IMF-fixdate of integer seconds since the epoch."""
    days, rem = divmod(int(secs), 86400)
    y, mo, d = civil_from_days(days)
    wd = ("Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed")[days % 7]
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (wd, d, _MONTHS[mo - 1], y, rem // 3600, rem // 60 % 60, rem % 60)


class Clock:
    """The agent's idea of true UTC.

    source() gives the board's milliseconds (injected, so tests and the simulated year can drive
    time). NTP sets the board clock itself; when the board clock is unset, the first time seen from
    the gateway (Date or Server-Time) is adopted as an offset. Differences over SKEW_WARN_S are
    reported through warn().
    """

    def __init__(self, source=unix_ms, warn=None):
        self.source = source
        self.offset_ms = 0
        self.warn = warn
        self.last_skew_s = None

    def now_ms(self):
        return self.source() + self.offset_ms

    def now(self):
        return self.now_ms() // 1000

    def is_set(self):
        return self.now_ms() >= MIN_VALID_MS

    def synced(self):
        """The board clock was set (e.g. by NTP): drop any offset learned from the gateway."""
        self.offset_ms = 0

    def observe(self, server_secs, what="Date"):
        """Compare with a time the gateway sent; adopt it when the local clock is unset."""
        skew = int(server_secs) - self.now()
        self.last_skew_s = skew
        if not self.is_set() or (self.offset_ms and abs(skew) > SKEW_WARN_S):
            self.offset_ms = int(server_secs) * 1000 - self.source()
            return skew
        if abs(skew) > SKEW_WARN_S and self.warn:
            self.warn(msg(_W, 5) % (what, skew))
        return skew

    def observe_headers(self, headers):
        """Use Server-Time (epoch seconds) or Date from a response's headers, if present."""
        st = headers.get("server-time")
        if st:
            try:
                return self.observe(int(st.strip().split(".")[0]), "Server-Time")
            except ValueError:
                pass
        d = headers.get("date")
        if d:
            try:
                return self.observe(parse_http_date(d), "Date")
            except ValueError:
                pass
        return None
