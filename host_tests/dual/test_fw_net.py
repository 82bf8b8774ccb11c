# Wi-Fi with a time limit and backoff on the simulated board (fake clock), and NTP reply parsing
# (both runtimes). The NTP exchange over a real UDP socket is in host_tests/test_fw_ntp.py.
import dualtest
from firmware import net
from firmware.boards import sim

T0 = 1767225600000


class FakeTime:
    def __init__(self):
        self.now = T0

    def clock(self):
        return self.now

    def sleep(self, ms):
        self.now += ms


def setup(**wifi):
    t = FakeTime()
    state = sim.SimState()
    for k in wifi:
        setattr(state, k, wifi[k])
    b = sim.SimBoard(dualtest.tmpdir() + "/flash", t.clock, t.sleep, state)
    return net.Wifi(b.wlan(), "plant-iot", "pw", b, timeout_ms=20000, backoff_max_ms=60000), b, state


def test_joins_within_the_limit():
    w, b, state = setup(wifi_connect_ms=3000)
    assert w.rssi() is None
    assert w.connect() is True
    assert 3000 <= b.ticks_ms() <= 3000 + net.POLL_MS and w.rssi() == -62
    assert w.connect() is True and state.wifi_attempts == 1  # already joined: nothing to do


def test_gone_access_point_costs_at_most_the_limit_then_backs_off():
    w, b, state = setup(wifi_up=False)
    assert w.connect() is False
    assert 20000 - 1000 <= b.ticks_ms() <= 20000 + net.POLL_MS
    assert state.wifi_attempts > 1  # retried inside the limit (1 s, 2 s, 4 s... apart)
    assert w.last_error.startswith("no access point with that SSID: check wifi.ssid")
    attempts, spent = state.wifi_attempts, b.ticks_ms()
    assert w.connect() is False and b.ticks_ms() == spent and state.wifi_attempts == attempts  # backing off
    waits = []
    for _ in range(6):  # each failure doubles the wait, up to backoff_max_ms
        start = b.ticks_ms()
        while not state.wifi_attempts > attempts:
            b.sleep_ms(1000)
            w.connect()
        waits.append(b.ticks_ms() - start)
        attempts = state.wifi_attempts
    assert waits[0] < waits[1] < waits[2] and max(waits) <= 60000 + 20000 + 1000
    state.wifi_up = True
    b.sleep_ms(60000)
    assert w.connect() is True and w.failures == 0


def test_the_watchdog_is_fed_while_a_join_is_awaited():
    # wifi.timeout_s may be up to 600 s, past the default watchdog_ms (60 s): a gone access point reset
    # the node in the wait, three times in a row meant crash safe mode
    for wifi in ({"wifi_up": False}, {"wifi_connect_ms": 200000}):
        t = FakeTime()
        state = sim.SimState()
        for k in wifi:
            setattr(state, k, wifi[k])
        b = sim.SimBoard(dualtest.tmpdir() + "/flash", t.clock, t.sleep, state)
        fed = [t.now, 0]  # the last feed, the longest gap between two

        def feed(fed=fed, t=t):
            fed[1] = max(fed[1], t.now - fed[0])
            fed[0] = t.now
        w = net.Wifi(b.wlan(), "plant-iot", "pw", b, timeout_ms=120000, on_wait=feed)
        assert w.connect() is False and t.now - T0 >= 60000
        feed()
        assert fed[1] <= 1000 + net.POLL_MS, (wifi, fed[1])


class WrongPassword:
    """A WLAN whose access point refuses the password at once (status 202)."""

    def __init__(self):
        self.connects = 0

    def active(self, on=None):
        return True

    def connect(self, ssid, pw):
        self.connects += 1

    def disconnect(self):
        pass

    def isconnected(self):
        return False

    def status(self, param=None):
        return 202


class DriverError(WrongPassword):
    """ESP32: WLAN.connect() raises "Wifi Internal Error" in some driver states."""

    def connect(self, ssid, pw):
        self.connects += 1
        raise OSError("Wifi Internal Error")


def test_a_driver_error_is_a_failed_try_not_a_crash():
    t = FakeTime()
    b = sim.SimBoard(dualtest.tmpdir() + "/flash", t.clock, t.sleep, sim.SimState())
    w = net.Wifi(DriverError(), "plant-iot", "pw", b, timeout_ms=5000)
    assert w.connect() is False and w.last_error == "Wi-Fi driver: Wifi Internal Error"
    assert w.connect() is False and w.wlan.connects == 1  # backing off


class NoMemory(WrongPassword):
    """ESP32: WLAN.active(True) raises when the driver cannot get its buffers from the IDF heap."""

    def __init__(self):
        WrongPassword.__init__(self)
        self.fail = True

    def active(self, on=None):
        if on and self.fail:
            raise OSError("Wifi Out of Memory")
        return True

    def isconnected(self):
        return self.connects > 0


def test_a_driver_that_cannot_start_is_a_failed_try_not_a_crash():
    t = FakeTime()
    b = sim.SimBoard(dualtest.tmpdir() + "/flash", t.clock, t.sleep, sim.SimState())
    wlan = NoMemory()
    w = net.Wifi(wlan, "plant-iot", "pw", b, timeout_ms=5000, backoff_max_ms=60000)
    assert w.connect() is False and w.last_error == "Wi-Fi driver: Wifi Out of Memory"
    assert w.connect() is False  # backing off
    wlan.fail = False
    b.sleep_ms(60000)
    assert w.connect() is True and w.failures == 0


def test_wrong_password_fails_fast_with_a_hint():
    t = FakeTime()
    b = sim.SimBoard(dualtest.tmpdir() + "/flash", t.clock, t.sleep, sim.SimState())
    wlan = WrongPassword()
    w = net.Wifi(wlan, "plant-iot", "bad", b, timeout_ms=5000)
    assert w.connect() is False
    assert w.last_error == "wrong password: check wifi_password in secrets.json"
    assert wlan.connects == 3 and b.ticks_ms() == 1000 + 2000  # retried at 1 s and 2 s, 4 s would pass the limit


def reply(secs, frac=0, mode=4, stratum=2):
    pkt = bytearray(48)
    pkt[0] = 0x20 | mode
    pkt[1] = stratum
    for i in range(4):
        pkt[40 + i] = (secs >> (24 - 8 * i)) & 0xFF
        pkt[44 + i] = (frac >> (24 - 8 * i)) & 0xFF
    return bytes(pkt)


def test_ntp_reply_parsing():
    # 2026-01-01T00:00:00Z is 3976214400 s after 1900-01-01; 0x80000000 of a second is 500 ms
    assert net.parse_ntp(reply(3976214400, 0x80000000)) == T0 + 500
    assert net.ntp_request()[0] == 0x23 and len(net.ntp_request()) == 48
    for bad, why in ((reply(3976214400)[:47], "too short"), (reply(3976214400, mode=3), "not from a server"),
                     (reply(3976214400, stratum=0), "kiss-o'-death"), (reply(0), "no time yet"),
                     (reply(3944678399), "before 2025"), (reply(438629504), "after 2049"),
                     ):  # garbage: the clock stays as it is
        e = dualtest.raises(ValueError, net.parse_ntp, bad)
        assert why in str(e)


# Server replies as on the wire (RFC 5905 figure 8): LI 0, version 4, mode 4, stratum 2, poll 3, precision
# -23, root delay, root dispersion, reference id 192.168.1.1, then the reference, origin, receive and
# transmit timestamps (32-bit seconds since 1900 in their era, 32-bit fraction).
WIRE = (
    # 2026-01-01T00:00:00.5Z, era 0
    ("240203e9 00000a3d 00001b58 c0a80101 ed00377c00000000 0000000000000000 ed0037807ff00000 ed00378080000000",
     1767225600500),
    # 2036-02-07T06:28:15.5Z, the last second of era 0
    ("240203e9 00000a3d 00001b58 c0a80101 fffffff000000000 0000000000000000 ffffffff7ff00000 ffffffff80000000",
     2085978495500),
    # 2036-02-07T06:28:17.25Z: the seconds wrapped to 1 (era 1)
    ("240203e9 00000a3d 00001b58 c0a80101 fffffff000000000 0000000000000000 000000013ff00000 0000000140000000",
     2085978497250),
    # 2040-01-01T00:00:00.5Z, era 1
    ("240203e9 00000a3d 00001b58 c0a80101 0754fcf000000000 0000000000000000 0754fd007ff00000 0754fd0080000000",
     2208988800500),
)


def test_ntp_replies_after_the_2036_wrap_are_read_in_era_1():
    # the 32-bit NTP seconds wrap on 2036-02-07T06:28:16Z; every reply after it was refused as "before
    # 2025", and a node that lost its clock (a power cut) never sampled again without the gateway's Date
    import binascii
    for hexpkt, unix_ms in WIRE:
        pkt = binascii.unhexlify(hexpkt.replace(" ", ""))
        assert len(pkt) == 48
        assert net.parse_ntp(pkt) == unix_ms, (hexpkt, net.parse_ntp(pkt), unix_ms)


def test_ntp_sync_never_raises():
    t = FakeTime()
    b = sim.SimBoard(dualtest.tmpdir() + "/flash", t.clock, t.sleep, sim.SimState())
    assert net.ntp_sync(b, "127.0.0.1", timeout_ms=200, port=1) is False  # nobody answers there
    assert b.unix_ms() == T0


def test_an_unsynchronized_ntp_server_is_not_believed():
    # a local NTP server without its own time source (a router, a PLC) answers with its free-running clock
    # and says so (leap indicator 3, stratum 16): that time set the board's clock, and the readings were
    # stamped with it until an upload's answer corrected the clock (never while the hub was out of reach)
    unsynced = bytearray(reply(3976214400))
    unsynced[0] |= 0xC0  # leap indicator 3: clock unsynchronized
    for bad in (bytes(unsynced), reply(3976214400, stratum=16)):
        e = dualtest.raises(ValueError, net.parse_ntp, bad)
        assert "unsynchronized" in str(e)
