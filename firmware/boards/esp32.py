"""The ESP32 board: real pins, buses, watchdog, deep sleep, RTC memory and Wi-Fi.

Hardware modules (machine, network, esp, esp32, onewire) are imported when first needed, never at
import time, so this file compiles and imports anywhere; it only works on an ESP32.
"""

import gc

from mindconnect import compat
from mindconnect.errors import ConfigError


class _Dht:
    """A DHT data pin as a bus: readinto(buf) gets the sensor's 5 bytes (timing done in C by the port)."""

    def __init__(self, pin):
        from esp import dht_readinto
        self.pin = pin
        self._read = dht_readinto

    def readinto(self, buf):
        self._read(self.pin, buf)


class _Adc:
    """machine.ADC with read() as a 12-bit count (read_u16 is 16-bit scaled) and the factory read_uv()."""

    def __init__(self, adc):
        self.adc = adc
        self.read_uv = adc.read_uv

    def read(self):
        return self.adc.read_u16() >> 4


class _RtcMemory:
    def __init__(self, rtc):
        self.rtc = rtc

    def get(self):
        return self.rtc.memory()

    def set(self, data):
        self.rtc.memory(data)


class Esp32Board:
    name = "esp32"
    simulated = False

    def __init__(self, flash_dir="/"):
        import machine
        self.machine = machine
        self.flash_dir = flash_dir
        self._i2c = {}
        self._onewire = {}
        self.ticks_ms = compat.ticks_ms
        self.ticks_diff = compat.ticks_diff
        self.ticks_add = compat.ticks_add
        self.sleep_ms = compat.sleep_ms
        self.unix_ms = compat.unix_ms

    def set_unix_ms(self, ms):
        """Set the RTC (which counts from 2000 on ESP32) to a true UTC time, e.g. from NTP."""
        from mindconnect.clock import civil_from_days
        secs, milli = divmod(int(ms), 1000)
        days, rem = divmod(secs, 86400)
        y, mo, d = civil_from_days(days)
        weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; RTC weekday 0 is Monday
        self.machine.RTC().datetime((y, mo, d, weekday, rem // 3600, rem // 60 % 60, rem % 60, milli * 1000))

    # buses and pins (one bus object per bus, shared by the sensors on it)
    def pin(self, n):
        m = self.machine
        return m.Pin(n, m.Pin.IN, m.Pin.PULL_UP)

    def i2c(self, bus):
        key = (bus["id"], bus["scl"], bus["sda"])
        if key not in self._i2c:
            m = self.machine
            self._i2c[key] = m.I2C(bus["id"], scl=m.Pin(bus["scl"]), sda=m.Pin(bus["sda"]), freq=bus["freq"])
        return self._i2c[key]

    def onewire(self, n):
        if n not in self._onewire:
            import onewire
            self._onewire[n] = onewire.OneWire(self.machine.Pin(n))
        return self._onewire[n]

    def dht(self, n):
        m = self.machine
        return _Dht(m.Pin(n, m.Pin.OPEN_DRAIN, m.Pin.PULL_UP))

    def adc(self, n, atten_db):
        m = self.machine
        atten = {0: m.ADC.ATTN_0DB, 2.5: m.ADC.ATTN_2_5DB, 6: m.ADC.ATTN_6DB, 11: m.ADC.ATTN_11DB}[atten_db]
        return _Adc(m.ADC(m.Pin(n), atten=atten))

    def internal_temp(self):
        """(unit, function) of the chip's temperature sensor: degC where the chip has mcu_temperature."""
        import esp32
        if hasattr(esp32, "mcu_temperature"):
            return "C", esp32.mcu_temperature
        if hasattr(esp32, "raw_temperature"):
            return "F", esp32.raw_temperature
        raise ConfigError("sensors: this chip has no internal temperature sensor in MicroPython; remove the "
                          "internal_temp sensor")

    # power
    def wdt(self, timeout_ms):
        return self.machine.WDT(timeout=timeout_ms)

    def deepsleep(self, ms):
        self.machine.deepsleep(ms)

    def reset(self):
        self.machine.reset()

    def reset_after(self, ms):
        """A one-shot hardware timer that resets the board after ms; its deinit() cancels it."""
        m = self.machine
        t = m.Timer(0)
        t.init(mode=m.Timer.ONE_SHOT, period=ms, callback=lambda _: m.reset())
        return t

    def reset_cause(self):
        m = self.machine
        names = ((getattr(m, "PWRON_RESET", 1), "power-on"), (getattr(m, "HARD_RESET", 2), "hard-reset"),
                 (getattr(m, "WDT_RESET", 3), "watchdog"), (getattr(m, "DEEPSLEEP_RESET", 4), "deepsleep"),
                 (getattr(m, "SOFT_RESET", 5), "soft-reset"), (getattr(m, "BROWN_OUT_RESET", 6), "brownout"))
        cause = m.reset_cause()
        for code, name in names:
            if code == cause:
                return name
        return "unknown"

    def rtc_memory(self):
        return _RtcMemory(self.machine.RTC())

    def free_heap(self):
        return gc.mem_free()

    def wlan(self):
        import network
        return network.WLAN(network.STA_IF)
