"""Board choice: the ESP32 board on an ESP32, the simulated board anywhere else.

A board is the one object through which the application touches hardware (pins, buses, flash folder,
clock, watchdog, sleep, RTC memory, Wi-Fi). Both boards have the same methods; see docs/FIRMWARE.md.
"""

import os
import sys

BOARDS = ("esp32", "sim")
ENV_BOARD = "MC_BOARD"


class Reset(Exception):
    """The simulated board's stand-in for a reboot (reset, deep sleep, watchdog): the runner starts over."""


def choose(forced=None, platform=None):
    """'esp32' or 'sim': forced (config "board") wins, then the MC_BOARD variable, then the platform."""
    if forced in (None, "", "auto"):
        getenv = getattr(os, "getenv", None)  # absent on ESP32
        forced = getenv(ENV_BOARD) if getenv else None
    if forced not in (None, "", "auto"):
        if forced not in BOARDS:
            from mindconnect.errors import ConfigError
            raise ConfigError("board: %r is not a board; use one of auto, esp32, sim" % (forced,))
        return forced
    return "esp32" if (platform or sys.platform) == "esp32" else "sim"


def make(name=None, **kw):
    """A board object; name as for choose(). Keyword arguments go to the board's constructor."""
    name = choose(name)
    if name == "esp32":
        from firmware.boards.esp32 import Esp32Board
        return Esp32Board(**kw)
    from firmware.boards.sim import SimBoard
    return SimBoard(**kw)
