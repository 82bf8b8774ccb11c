"""The ESP32 board against fake machine/network/esp/esp32/onewire modules (CPython only: the unix
port has a built-in machine module). Checks what the board asks of the port, not the port itself."""

import sys
import types

import pytest

from firmware import sensors
from firmware.boards import esp32


class Pin:
    IN, OUT, OPEN_DRAIN, PULL_UP = 1, 2, 3, 4

    def __init__(self, n, mode=None, pull=None):
        self.n, self.mode, self.pull = n, mode, pull

    def value(self):
        return 0 if self.n == 0 else 1


class ADC:
    ATTN_0DB, ATTN_2_5DB, ATTN_6DB, ATTN_11DB = 0, 1, 2, 3

    def __init__(self, pin, atten):
        self.pin, self.atten = pin, atten

    def read_u16(self):
        return 0x8000

    def read_uv(self):
        return 1650000


class RTC:
    mem = b""
    set_to = None

    def memory(self, data=None):
        if data is None:
            return RTC.mem
        RTC.mem = bytes(data)

    def datetime(self, t):
        RTC.set_to = t


class Timer:
    ONE_SHOT, PERIODIC = 0, 1

    def __init__(self, n):
        self.n = n
        self.armed = None

    def init(self, mode, period, callback):
        self.armed = (mode, period, callback)

    def deinit(self):
        self.armed = None


@pytest.fixture
def fake_port(monkeypatch):
    m = types.ModuleType("machine")
    m.Pin, m.ADC, m.RTC = Pin, ADC, RTC
    m.I2C = lambda *a, **kw: ("i2c", a, tuple(sorted((k, getattr(v, "n", v)) for k, v in kw.items())))
    m.WDT = lambda timeout: ("wdt", timeout)
    m.PWRON_RESET, m.HARD_RESET, m.WDT_RESET, m.DEEPSLEEP_RESET, m.SOFT_RESET = 1, 2, 3, 4, 5
    m.cause = 4
    m.reset_cause = lambda: m.cause
    m.slept = []
    m.deepsleep = m.slept.append
    m.resets = []
    m.reset = lambda: m.resets.append("reset")
    m.Timer = Timer
    e = types.ModuleType("esp")
    e.reads = []
    e.dht_readinto = lambda pin, buf: (e.reads.append(pin.n), buf.__setitem__(slice(0, 5), b"\x02\x8c\x01\x5f\xee"))
    e32 = types.ModuleType("esp32")
    e32.raw_temperature = lambda: 122
    ow = types.ModuleType("onewire")
    ow.OneWire = lambda pin: ("onewire", pin.n)
    for name, mod in (("machine", m), ("esp", e), ("esp32", e32), ("onewire", ow)):
        monkeypatch.setitem(sys.modules, name, mod)
    return m


def test_reset_causes_and_power(fake_port):
    b = esp32.Esp32Board()
    assert b.reset_cause() == "deepsleep" and b.flash_dir == "/"
    fake_port.cause = 3
    assert b.reset_cause() == "watchdog"
    fake_port.cause = 99
    assert b.reset_cause() == "unknown"
    b.deepsleep(60000)
    assert fake_port.slept == [60000] and b.wdt(30000) == ("wdt", 30000)
    b.rtc_memory().set(b"abc")
    assert b.rtc_memory().get() == b"abc"
    assert b.pin(0).value() == 0 and b.pin(0).pull == Pin.PULL_UP
    t = b.reset_after(3600000)  # the end of a safe mode entered for crashes: a one-shot hardware timer
    mode, period, callback = t.armed
    assert t.n == 0 and mode == Timer.ONE_SHOT and period == 3600000 and fake_port.resets == []
    callback(t)
    assert fake_port.resets == ["reset"]


def test_set_unix_ms_fills_the_rtc_tuple(fake_port):
    esp32.Esp32Board().set_unix_ms(1767225600000 + 3723456)  # 2026-01-01 01:02:03.456, a Thursday
    assert RTC.set_to == (2026, 1, 1, 3, 1, 2, 3, 456000)


def test_buses_are_shared_and_sensors_build(fake_port):
    b = esp32.Esp32Board()
    bus = {"id": 0, "sda": 21, "scl": 22, "freq": 100000}
    assert b.i2c(bus) is b.i2c(dict(bus)) and b.onewire(13) is b.onewire(13)
    assert sensors.build({"type": "dht22", "pin": 4}, b).read() == {"humidity": 65.2, "temperature": 35.1}
    assert sys.modules["esp"].reads == [4]
    adc = sensors.build({"type": "adc", "pin": 34, "atten_db": 11, "scale": 2, "offset_v": 0, "samples": 2}, b)
    assert adc.read() == {"voltage": 3.3}  # factory calibration (read_uv) x divider 2
    assert b.adc(34, 11).read() == 2048 and b.adc(34, 6).adc.atten == ADC.ATTN_6DB
    t = sensors.build({"type": "internal_temp", "offset_c": -10}, b).read()["temperature"]
    assert t == pytest.approx(40.0)  # 122 F = 50 C, minus the offset
