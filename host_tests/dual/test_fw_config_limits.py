# Values the config check used to take that an ESP32 cannot run: each passed validation and then reset
# or crashed the node at every wake or upload (both runtimes).
from test_fw_cfgbase import changed, minimal

import dualtest
from firmware import config
from mindconnect.errors import ConfigError


def _refused(changes, want):
    e = dualtest.raises(ConfigError, config.validate, changed(minimal, changes))
    assert str(e).startswith(want), (str(e), want)


def test_a_watchdog_shorter_than_a_wait_for_the_gateway_is_refused():
    # The agent waits up to 30 s for an unreachable gateway (TCP connect, handshake read) with nothing to
    # feed the watchdog: a 20-30 s one reset the node in each such upload, and three resets in a row
    # before the first upload ended meant crash safe mode (an hour without sampling, again and again).
    _refused((("watchdog_ms", 30000),), "watchdog_ms: 30000 ms is shorter than a wait for the gateway (30 s); "
             "use 0 (off) or >= 45000")
    _refused((("watchdog_ms", 2 ** 31),), "watchdog_ms: 2147483648 is out of range")  # machine.WDT's word
    for ok in (0, 45000, 2 ** 31 - 1):
        assert config.validate(changed(minimal, (("watchdog_ms", ok),))).watchdog_ms == ok


def test_times_an_esp32_cannot_count_are_refused():
    # machine.deepsleep(ms) and ticks_add take a machine word: OverflowError at every wake or backoff
    _refused((("mode", "deep-sleep"), ("sample_s", 2147484), ("upload_s", 2147484)),
             "sample_s: 2147484 is out of range; use 1..2147483")
    _refused((("wifi", {"ssid": "x", "backoff_max_s": 536871}),), "wifi.backoff_max_s: 536871 is out of range; "
             "use 1..536870")
    c = config.validate(changed(minimal, (("mode", "deep-sleep"), ("sample_s", 2147483), ("upload_s", 2147483),
                                          ("wifi", {"ssid": "x", "backoff_max_s": 536870}))))
    assert (c.sample_s, c.wifi["backoff_max_s"]) == (2147483, 536870)
