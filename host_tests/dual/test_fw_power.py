# main.py's run loop and boot.py's safe mode on the simulated board with a fake clock: crash counting,
# safe mode after three failed boots or a held pin, bad config -> REPL, deep-sleep cycles with RTC
# records (both runtimes).
import json

import dualtest
from firmware import power
from firmware.boards import sim
from mindconnect.errors import ConfigError

# The whole boot path is loaded here at once (sim board, power, config and its checker, this module):
# that is the app's budget (96K on the 64-bit unix port), not a single module's.
MPY_HEAPSIZE = "96K"

CONFIG = {"sensors": [{"type": "sim", "points": [{"id": "t1"}]}], "sample_s": 10}


class FakeTime:
    def __init__(self):
        self.now = 1767225600000
        self.slept = 0

    def clock(self):
        return self.now

    def sleep(self, ms):
        self.now += ms
        self.slept += ms


def setup(config=CONFIG, state=None):
    flash = dualtest.tmpdir() + "/flash"
    t = FakeTime()
    b = sim.SimBoard(flash, t.clock, t.sleep, state or sim.SimState())
    if config is not None:
        dualtest.write_bytes(flash + "/config.json", json.dumps(config).encode())
    dualtest.write_bytes(flash + "/ca.der", b"\x30\x00")
    return b, t


class App:
    """A stand-in for firmware.app.main: does what `plan` says on each boot."""

    def __init__(self, *plan):
        self.plan = list(plan)
        self.boots = []

    def __call__(self, board, cfg):
        self.boots.append((board.reset_cause(), cfg.sample_s))
        step = self.plan.pop(0)
        if step == "crash":
            raise ValueError("sensor table corrupt")
        if step == "healthy-then-crash":
            power.mark_healthy(board)
            raise ValueError("late crash")
        if step == "sleep":
            power.RtcRecord(board).save(b"boot %d" % len(self.boots))
            board.deepsleep(60000)
        if step == "healthy":
            power.mark_healthy(board)
        if step == "cut":
            raise PowerCut()


class PowerCut(BaseException):
    """The supply went away while the app ran: nothing after it runs (not an Exception: not a crash)."""


def power_back(board, t):
    """The board after the power returned: same flash, a new power-on state (RTC memory lost)."""
    return sim.SimBoard(board.flash_dir, t.clock, t.sleep, sim.SimState())


def test_three_failed_boots_in_a_row_give_safe_mode():
    b, t = setup()
    app = App("crash", "crash", "crash", "crash")
    reason = power.run_main(app, b)
    assert reason == "the app failed 3 boots in a row (last: ValueError: sensor table corrupt)"
    assert len(app.boots) == 3 and app.boots[1][0] == "soft-reset"
    assert t.slept == 3 * power.CRASH_PAUSE_MS + 3 * (power.SAFE_WINDOW_MS - power.SAFE_POLL_MS)
    assert power.CrashCounter(b.flash_dir).read() == (0, "")  # the next reset tries the app again
    timer = b.state.reset_timer  # and that reset comes by itself: an unattended node needs no visit
    assert timer.ms == power.SAFE_RETRY_MS == 3600000 and not timer.cancelled
    power.stay()  # unless someone at the REPL wants to stay
    assert timer.cancelled


def test_power_cuts_while_the_app_runs_are_not_failed_boots():
    b, t = setup()
    for _ in range(power.CRASHES_FOR_SAFE_MODE + 2):  # cut again and again during the first upload
        dualtest.raises(PowerCut, power.run_main, App("cut"), b)
        assert power.CrashCounter(b.flash_dir).read()[0] == 1  # the boot in progress
        b = power_back(b, t)
    app = App("healthy")
    assert power.run_main(app, b) is None and app.boots == [("power-on", 10)]
    assert power.CrashCounter(b.flash_dir).read() == (0, "")


def test_crashes_still_count_across_a_power_cut():
    b, t = setup()
    dualtest.raises(PowerCut, power.run_main, App("crash", "crash", "cut"), b)
    b = power_back(b, t)
    assert power.CrashCounter(b.flash_dir).read()[0] == 3  # read before the boot check forgives the cut one
    app = App("crash")
    reason = power.run_main(app, b)
    assert reason == "the app failed 3 boots in a row (last: ValueError: sensor table corrupt)"
    assert len(app.boots) == 1  # two crashes before the cut and one after it


def test_a_hang_reset_by_the_watchdog_still_counts():
    b, t = setup()
    power.CrashCounter(b.flash_dir).started()  # a boot in progress, then the watchdog fires
    b.state.reset_cause = "watchdog"
    app = App("crash", "crash")
    assert power.run_main(app, b).startswith("the app failed 3 boots in a row")
    assert len(app.boots) == 2


def test_a_healthy_app_resets_the_count():
    b, _ = setup()
    app = App("crash", "crash", "healthy-then-crash", "crash", "crash", "healthy")
    assert power.run_main(app, b) is None
    assert len(app.boots) == 6  # the healthy mark in boot 3 restarted the count
    assert power.CrashCounter(b.flash_dir).read() == (0, "")


def test_bad_config_stays_in_the_repl_without_counting():
    b, _ = setup({"sensors": [{"type": "dht22", "pin": 35, "points": [{"id": "t"}]}]})
    app = App()
    assert power.run_main(app, b) is None
    assert app.boots == [] and power.CrashCounter(b.flash_dir).read() == (0, "")
    b, _ = setup(None)
    assert power.run_main(app, b) is None and app.boots == []


def test_held_pin_gives_safe_mode_and_can_be_moved_or_disabled():
    state = sim.SimState()
    state.held_pins = [0]
    b, _ = setup(state=state)
    app = App("healthy")
    assert power.run_main(app, b) == "GPIO0 was held low at boot" and app.boots == []
    assert state.reset_timer is None  # someone is at the board: no reset to end it
    b, _ = setup(dict(CONFIG, safe_pin=4), state)  # the button moved to GPIO4: GPIO0 is ignored
    assert power.run_main(app, b) is None and len(app.boots) == 1
    state.held_pins = [4]
    assert power.run_main(App(), b) == "GPIO4 was held low at boot"
    b, _ = setup(dict(CONFIG, safe_pin=None), state)
    assert power.run_main(App("healthy"), b) is None


class _Esp32Pins(sim.SimBoard):
    """machine.Pin on an ESP32 refuses a number that is not one of its GPIOs."""

    def pin(self, n, *args, **kw):
        if n > 39:
            raise ValueError("invalid pin")
        return sim.SimBoard.pin(self, n, *args, **kw)


def test_a_safe_pin_the_board_refuses_ends_in_the_config_error_not_a_traceback():
    b, t = setup(dict(CONFIG, safe_pin=40))
    b = _Esp32Pins(b.flash_dir, t.clock, t.sleep, sim.SimState())
    try:
        assert power.boot(b, unload=False) is None  # boot.py: no safe mode, no exception
    finally:
        power._boot_checked = False
    app = App()
    assert power.run_main(app, b) is None and app.boots == []  # config.load names safe_pin; REPL


class _PinLog(sim.SimBoard):
    """Records which GPIOs boot configured (machine.Pin(n, IN, PULL_UP) on an ESP32)."""

    def pin(self, n, *args, **kw):
        self.state.asked.append(n)
        return sim.SimBoard.pin(self, n, *args, **kw)


def test_boot_never_configures_the_serial_or_flash_pins_a_bad_safe_pin_names():
    # safe_pin 3 made the REPL's receive pin an input at every boot, before the config check refused it:
    # the error was printed to a REPL that could no longer be typed into (6-11: the flash itself)
    for bad in (1, 3, 6, 11):
        b, t = setup(dict(CONFIG, safe_pin=bad))
        state = sim.SimState()
        state.asked = []
        b = _PinLog(b.flash_dir, t.clock, t.sleep, state)
        try:
            assert power.boot(b, unload=False) is None
        finally:
            power._boot_checked = False
        assert state.asked == [power.DEFAULT_SAFE_PIN], (bad, state.asked)
        app = App()
        assert power.run_main(app, b) is None and app.boots == []  # config.load names safe_pin; REPL
        assert bad not in state.asked


def test_boot_decides_for_main():
    state = sim.SimState()
    state.held_pins = [0]
    b, _ = setup(state=state)
    try:
        assert power.boot(b, unload=False) == "GPIO0 was held low at boot"
        state.held_pins = []
        assert power.run_main(App("healthy"), b) == "GPIO0 was held low at boot"  # boot.py's decision holds
    finally:
        power._boot_checked = False
        power._safe_reason = None


def test_deep_sleep_cycles_keep_the_rtc_record():
    b, t = setup()
    seen = []

    def app(board, cfg):
        seen.append((board.reset_cause(), power.RtcRecord(board).load()))
        power.mark_healthy(board)
        if len(seen) < 4:
            power.RtcRecord(board).save(b"wake %d" % len(seen))
            board.deepsleep(cfg.sample_s * 1000)

    before = t.now
    assert power.run_main(app, b) is None
    assert seen == [("power-on", None), ("deepsleep", b"wake 1"), ("deepsleep", b"wake 2"), ("deepsleep", b"wake 3")]
    # the first boot watched the safe pin for the window; a wake from deep sleep reads it once
    assert t.now - before == 3 * 10000 + power.SAFE_WINDOW_MS - power.SAFE_POLL_MS


def test_rtc_record_refuses_garbage():
    b, _ = setup()
    rec = power.RtcRecord(b)
    assert rec.load() is None
    rec.save(b"\x00\x01schedule")
    assert rec.load() == b"\x00\x01schedule"
    mem = b.rtc_memory()
    raw = bytearray(mem.get())
    raw[-1] ^= 1
    mem.set(bytes(raw))
    assert rec.load() is None
    mem.set(b"random power-on content")
    assert rec.load() is None


def test_crash_counter_file_is_replaced_atomically():
    b, _ = setup()
    c = power.CrashCounter(b.flash_dir)
    assert c.started() == 1 and c.started() == 2
    c.crashed(ConfigError("line one\nline two"))
    assert c.read() == (2, "ConfigError: line one line two")
    import os
    assert sorted(os.listdir(b.flash_dir)) == ["ca.der", "config.json", "crash_count"]  # no temp file left
    c.clear()
    c.clear()
    assert c.read() == (0, "")


def test_a_crash_counter_the_flash_cannot_take_does_not_stop_the_app():
    # a full flash (the spool may take all of it: test_spool_flash_full) refused the counter's write at
    # the start of a boot, or after a crash: the OSError left main.py at the REPL, the app stopped for good
    import os
    b, _ = setup()
    os.mkdir(b.flash_dir + "/" + power.CRASH_FILE + ".tmp")  # every write of the counter fails
    app = App("crash", "healthy")
    assert power.run_main(app, b) is None
    assert len(app.boots) == 2
