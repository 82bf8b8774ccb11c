# clock.py: calendar arithmetic, ISO-8601 with milliseconds, HTTP dates, skew handling (both runtimes).
import dualtest
from mindconnect import clock


def test_iso8601_known_instants():
    cases = (
        (0, "1970-01-01T00:00:00.000Z"),
        (1764050571272, "2025-11-25T06:02:51.272Z"),
        (951782400000, "2000-02-29T00:00:00.000Z"),
        (4107542399999, "2100-02-28T23:59:59.999Z"),
        (1709164800001, "2024-02-29T00:00:00.001Z"),
    )
    for ms, text in cases:
        assert clock.iso8601(ms) == text, (ms, clock.iso8601(ms))
        assert clock.parse_iso8601(text) == ms


def test_days_roundtrip_over_four_centuries():
    # every 97th day from 1900 to 2300 maps back to itself (leap years of all kinds)
    for z in range(-25567, 120000, 97):
        assert clock.days_from_civil(*clock.civil_from_days(z)) == z


def test_parse_iso8601_refuses_garbage():
    for bad in ("2026-11-25 06:02:51Z", "2026-11-25T06:02:51.272", "2026-13-01T00:00:00Z", "x" * 24,
                "2026-11-25T06:02:51.2a2Z", "2026-11-25T06:02:51.Z"):
        dualtest.raises(ValueError, clock.parse_iso8601, bad)
    assert clock.parse_iso8601("2026-11-25T06:02:51Z") % 1000 == 0
    assert clock.parse_iso8601("2026-11-25T06:02:51.5Z") % 1000 == 500


def test_http_date_roundtrip():
    assert clock.parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777
    assert clock.http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"
    for t in (0, 1764050571, 1893456000, 2000000000):
        assert clock.parse_http_date(clock.http_date(t)) == t
    for bad in ("", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49 GMT"):
        dualtest.raises(ValueError, clock.parse_http_date, bad)


def test_unset_clock_adopts_gateway_time():
    board = [5000]  # a board that booted without NTP: 5 s after the epoch
    c = clock.Clock(source=lambda: board[0])
    assert not c.is_set()
    c.observe_headers({"server-time": "1764050571"})
    assert c.is_set() and c.now() == 1764050571
    board[0] += 2500
    assert c.now_ms() == 1764050573500
    # a Date header is used when there is no Server-Time
    c2 = clock.Clock(source=lambda: 0)
    c2.observe_headers({"date": "Tue, 25 Nov 2025 06:02:51 GMT"})
    assert c2.now() == 1764050571


def test_set_clock_only_warns_on_skew():
    warnings = []
    c = clock.Clock(source=lambda: 1764050571000, warn=warnings.append)
    assert c.observe(1764050571 + 30) == 30 and not warnings  # within 60 s: quiet
    assert c.observe(1764050571 + 600) == 600
    assert c.now() == 1764050571  # NTP time stays in charge
    assert len(warnings) == 1 and "600" in warnings[0]
