"""The simulated board: a folder as flash, an injected clock and sleep, plausible sensor signals.

Runs on CPython and on the MicroPython unix port (no machine module). Time comes only from the
injected clock_ms (Unix milliseconds) and passes only through the injected sleep_ms, so a test can
drive a simulated year in seconds. What a real board keeps across a reboot but loses on a power cut
(RTC memory, the reset cause, the RTC's time) lives in a SimState, one per process by default: a new
process is a power-on. Reboots (reset, deep sleep, watchdog) raise boards.Reset for the runner.
"""

import gc
import math
import os

from firmware.boards import Reset
from mindconnect import compat

RTC_MEMORY_MAX = 2048  # bytes of RTC user memory MicroPython offers on ESP32
DAY_MS = 86400000

# network.WLAN status codes as the ESP32 port numbers them
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201


class SimState:
    """What survives a simulated reboot: reset cause, RTC memory and time, held pins, the Wi-Fi world."""

    def __init__(self):
        self.reset_cause = "power-on"
        self.rtc_memory = b""
        self.clock_offset_ms = 0
        self.held_pins = []
        self.wifi_up = True  # False: the access point is gone
        self.wifi_connect_ms = 800
        self.wifi_rssi = -62
        self.wifi_attempts = 0
        self.reset_timer = None  # SimTimer of a pending reset_after()


_power_on_state = None


def power_on_state():
    """The process-wide SimState (created on first use: a process is one power-on)."""
    global _power_on_state
    if _power_on_state is None:
        _power_on_state = SimState()
    return _power_on_state


class Signals:
    """Deterministic, plausible values: daily temperature and humidity cycles, slow pressure waves,
    a battery discharging over a month, and a little noise. seed shifts a sensor off its neighbours."""

    def value(self, quantity, unix_ms, seed=0):
        day = 2 * math.pi * ((unix_ms % DAY_MS) / DAY_MS - 0.375)  # warmest mid-afternoon
        noise = self._noise(unix_ms // 1000, seed, len(quantity)) - 0.5
        if quantity == "temperature":
            return round(21 + seed * 0.7 + 4 * math.sin(day) + 0.4 * noise, 2)
        if quantity == "humidity":
            return round(min(100, max(0, 55 - 12 * math.sin(day) + 2 * noise)), 1)
        if quantity == "pressure":
            wave = 2 * math.pi * (unix_ms % (DAY_MS * 43 // 10)) / (DAY_MS * 43 // 10)
            return round(101325 + 600 * math.sin(wave) + 20 * noise, 1)
        if quantity == "voltage":
            month = (unix_ms % (30 * DAY_MS)) / (30 * DAY_MS)
            return round(4.15 - 0.6 * month + 0.01 * noise, 3)
        raise ValueError("no simulated signal for %r" % quantity)

    @staticmethod
    def _noise(second, seed, salt):
        """A pseudo-random number in [0, 1) from the second, the seed and a salt (an integer hash)."""
        x = (second * 2654435761 + seed * 40503 + salt * 97) & 0xFFFFFFFF
        x ^= x >> 15
        x = (x * 2246822519) & 0xFFFFFFFF
        x ^= x >> 13
        return (x & 0xFFFF) / 65536


class SimWdt:
    """A watchdog that resets the board (raises Reset) when time passes beyond timeout without feed()."""

    def __init__(self, board, timeout_ms):
        self.board = board
        self.timeout_ms = timeout_ms
        self.fed = board.ticks_ms()

    def overdue(self):
        return self.board.ticks_diff(self.board.ticks_ms(), self.fed) > self.timeout_ms

    def feed(self):
        if self.overdue():
            self.board.watchdog_reset()
        self.fed = self.board.ticks_ms()


class SimTimer:
    """A recorded reset_after(ms): .ms, and .cancelled once deinit() was called."""

    def __init__(self, ms):
        self.ms = ms
        self.cancelled = False

    def deinit(self):
        self.cancelled = True


class SimRtcMemory:
    def __init__(self, state):
        self.state = state

    def get(self):
        return self.state.rtc_memory

    def set(self, data):
        if len(data) > RTC_MEMORY_MAX:
            raise ValueError("RTC memory holds at most %d bytes" % RTC_MEMORY_MAX)
        self.state.rtc_memory = bytes(data)


class SimBoard:
    name = "sim"
    simulated = True

    def __init__(self, flash_dir=None, clock_ms=None, sleep_ms=None, state=None):
        if flash_dir is None:
            getenv = getattr(os, "getenv", None)
            flash_dir = (getenv("MC_FLASH_DIR") if getenv else None) or "flash"
        try:
            os.mkdir(flash_dir)
        except OSError:
            pass  # already there
        self.flash_dir = flash_dir
        self._clock = clock_ms or compat.unix_ms
        self._sleep = sleep_ms or compat.sleep_ms
        self.state = state or power_on_state()
        self._boot_ms = self._clock()
        self._wdt = None
        self._signals = None

    def rebooted(self):
        """The board as it comes up after a simulated reboot: same flash, clock and state; ticks from 0.

        Same class as this board, so a subclass (e.g. the soak runner's, which reports deep sleeps)
        survives the reboot."""
        return type(self)(self.flash_dir, self._clock, self._sleep, self.state)

    # time
    def ticks_ms(self):
        return self._clock() - self._boot_ms

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, a, b):
        return a + b

    def sleep_ms(self, ms):
        self._sleep(ms)
        if self._wdt is not None and self._wdt.overdue():
            self.watchdog_reset()

    def unix_ms(self):
        return self._clock() + self.state.clock_offset_ms

    def set_unix_ms(self, ms):
        self.state.clock_offset_ms = int(ms) - self._clock()

    # sensors and pins
    def signals(self):
        if self._signals is None:
            self._signals = Signals()
        return self._signals

    def pin(self, n):
        from firmware.boards.simextra import SimPin
        return SimPin(self.state, n)

    # power
    def wdt(self, timeout_ms):
        self._wdt = SimWdt(self, timeout_ms)
        return self._wdt

    def watchdog_reset(self):
        self.state.reset_cause = "watchdog"
        raise Reset("watchdog")

    def deepsleep(self, ms):
        self.state.reset_cause = "deepsleep"
        self._wdt = None
        self._sleep(ms)
        raise Reset("deepsleep")

    def reset(self):
        self.state.reset_cause = "soft-reset"
        raise Reset("reset")

    def reset_after(self, ms):
        """The simulated board has no REPL to wait in: the timer is only recorded (state.reset_timer)."""
        self.state.reset_timer = SimTimer(ms)
        return self.state.reset_timer

    def reset_cause(self):
        return self.state.reset_cause

    def rtc_memory(self):
        return SimRtcMemory(self.state)

    def free_heap(self):
        """Free bytes of the Python heap, or None where the runtime cannot tell (CPython)."""
        return gc.mem_free() if hasattr(gc, "mem_free") else None

    def wlan(self):
        from firmware.boards.simextra import SimWlan
        return SimWlan(self, self.state)
