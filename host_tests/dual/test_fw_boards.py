# Board choice and the simulated board: injected time, flash folder, watchdog, deep sleep, RTC memory,
# reset causes, simulated Wi-Fi and sensors (both runtimes).
import dualtest
from firmware import boards, sensors
from firmware.boards import sim
from mindconnect.errors import ConfigError

T0 = 1767225600000  # 2026-01-01T00:00:00Z


class FakeTime:
    """A clock that moves only when slept on."""

    def __init__(self, now=T0):
        self.now = now
        self.slept = 0

    def clock(self):
        return self.now

    def sleep(self, ms):
        self.now += ms
        self.slept += ms


def board(state=None, t=None):
    t = t or FakeTime()
    return sim.SimBoard(dualtest.tmpdir() + "/flash", t.clock, t.sleep, state or sim.SimState()), t


def test_choice_by_platform_and_forcing():
    assert boards.choose(None, "esp32") in ("esp32", "sim")  # MC_BOARD may force sim in this environment
    assert boards.choose("sim", "esp32") == "sim"
    assert boards.choose("esp32", "linux") == "esp32"
    if dualtest.env("MC_BOARD") is None:
        assert boards.choose(None, "esp32") == "esp32"
        assert boards.choose("auto", "linux") == "sim"
        assert boards.choose(None, "darwin") == "sim"
    e = dualtest.raises(ConfigError, boards.choose, "rp2", "linux")
    assert str(e) == "board: 'rp2' is not a board; use one of auto, esp32, sim"
    b = boards.make("sim", flash_dir=dualtest.tmpdir() + "/f2")
    assert b.name == "sim" and b.simulated


def test_time_is_injected():
    b, t = board()
    assert b.ticks_ms() == 0 and b.unix_ms() == T0
    b.sleep_ms(1500)
    assert b.ticks_ms() == 1500 and b.ticks_diff(b.ticks_ms(), 500) == 1000 and t.slept == 1500
    b.set_unix_ms(T0 + 3600000)  # e.g. NTP said the host clock is an hour behind
    assert b.unix_ms() == T0 + 3600000
    b.sleep_ms(500)
    assert b.rebooted().unix_ms() == T0 + 3600500  # the RTC keeps time over a reset
    assert b.rebooted().ticks_ms() == 0


def test_flash_folder_is_made():
    b, _ = board()
    dualtest.write_bytes(b.flash_dir + "/x.bin", b"1")
    assert dualtest.read_bytes(b.flash_dir + "/x.bin") == b"1"
    assert sim.SimBoard(b.flash_dir).flash_dir == b.flash_dir  # already there: fine


def test_watchdog_resets_when_not_fed():
    b, t = board()
    wdt = b.wdt(10000)
    for _ in range(5):
        b.sleep_ms(6000)
        wdt.feed()
    dualtest.raises(boards.Reset, b.sleep_ms, 10001)
    assert b.reset_cause() == "watchdog"
    b2 = b.rebooted()
    b2.sleep_ms(60000)  # the watchdog is gone after the reset
    w2 = b2.wdt(1000)
    t.now += 5000  # busy work without a sleep: the next feed finds the dog already bit
    dualtest.raises(boards.Reset, w2.feed)


def test_deepsleep_keeps_rtc_memory_and_reports_the_cause():
    state = sim.SimState()
    b, t = board(state)
    assert b.reset_cause() == "power-on"
    b.rtc_memory().set(b"schedule")
    e = dualtest.raises(boards.Reset, b.deepsleep, 300000)
    assert str(e) == "deepsleep" and t.slept == 300000
    b2 = b.rebooted()
    assert b2.reset_cause() == "deepsleep" and b2.rtc_memory().get() == b"schedule"
    dualtest.raises(boards.Reset, b2.reset)
    assert b2.reset_cause() == "soft-reset"
    dualtest.raises(ValueError, b2.rtc_memory().set, bytes(2049))
    assert sim.SimBoard(b.flash_dir, t.clock, t.sleep, sim.SimState()).rtc_memory().get() == b""  # power cut


def test_reboot_keeps_the_board_class():
    class Recording(sim.SimBoard):  # e.g. the soak runner's board, which reports its deep sleeps
        pass

    b = Recording(dualtest.tmpdir() + "/flash", FakeTime().clock, FakeTime().sleep, sim.SimState())
    assert type(b.rebooted()) is Recording


def test_free_heap():
    b, _ = board()
    h = b.free_heap()
    assert (h is None) if not dualtest.MICROPYTHON else (0 < h < 1024 * 1024)


def test_sim_wifi_joins_after_a_while_or_not_at_all():
    state = sim.SimState()
    b, _ = board(state)
    w = b.wlan()
    dualtest.raises(OSError, w.connect, "ssid", "pw")  # interface off
    w.active(True)
    w.connect("ssid", "pw")
    assert not w.isconnected() and w.status() == sim.STAT_CONNECTING
    b.sleep_ms(state.wifi_connect_ms)
    assert w.isconnected() and w.status("rssi") == -62
    state.wifi_up = False
    w.connect("ssid", "pw")
    b.sleep_ms(state.wifi_connect_ms)
    assert w.status() == sim.STAT_NO_AP_FOUND
    dualtest.raises(OSError, w.status, "rssi")


def test_simulated_sensors_are_plausible_and_follow_the_clock():
    b, t = board()
    cfg = {"type": "bme280", "i2c": {"id": 0, "sda": 21, "scl": 22, "freq": 100000}, "address": 0x76}
    s = sensors.build(cfg, b)  # a real sensor entry becomes a simulated one on the sim board
    temps = []
    for _ in range(24):
        v = s.read()
        assert sorted(v) == ["humidity", "pressure", "temperature"]
        assert 10 < v["temperature"] < 32 and 0 <= v["humidity"] <= 100 and 99000 < v["pressure"] < 103000
        temps.append(v["temperature"])
        t.now += 3600000
    assert max(temps) - min(temps) > 5  # a daily cycle
    assert temps.index(max(temps)) in range(12, 18)  # warmest in the afternoon (UTC)
    again = sim.Signals().value("temperature", T0, 0)
    assert again == sim.Signals().value("temperature", T0, 0)  # deterministic
    v = sensors.build({"type": "adc", "pin": 34}, b).read()
    assert list(v) == ["voltage"] and 3.4 < v["voltage"] < 4.2
