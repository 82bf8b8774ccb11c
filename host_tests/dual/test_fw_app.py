# firmware/app.py on the simulated board with a fake clock against the mock hub over real TLS (both
# runtimes): readings, events, telemetry and the derived data model arrive; an outage of the hub (503
# until cleared) loses no reading; hysteresis gives one event for a hovering value; the schedule
# survives deep sleep in RTC memory.
import json

import dualtest
from firmware import app as appmod
from firmware import config
from firmware.boards import Reset, sim
from mindconnect.http import HTTPClient
from mindconnect.transport import Transport

HOST_FIXTURES = ("mockhub_env",)
# The board runs on FakeTime (hours pass in seconds), the hub on real time: the app's correction of its
# clock from the hub's Date would undo the fake time. On here only where the test is about it.
appmod.App.follow_gateway_clock = False
# The app (sim board, config, spools, agent, TLS) plus this module and the admin client's JSON answers.
MPY_HEAPSIZE = "256K"
T0 = 1767225600000


class FakeTime:
    """Board time near the real time (the hub checks JWT times against its own clock)."""

    def __init__(self):
        import time
        self.now = int(time.time()) * 1000

    def clock(self):
        return self.now

    def sleep(self, ms):
        self.now += ms


def admin(method, path, doc=None):
    url = dualtest.env("MOCKHUB_ADMIN_URL")
    c = HTTPClient(Transport(tls=False).connect, "127.0.0.1", int(url.rsplit(":", 1)[1]), max_body=1 << 20)
    try:
        r = c.request(method, path, {"Content-Type": "application/json"} if doc is not None else None,
                      json.dumps(doc) if doc is not None else None)
    finally:
        c.close()
    if r.status >= 300:
        raise AssertionError("admin %s %s: %d %s" % (method, path, r.status, r.body))
    return r.json() if r.body else None


def node(extra=None, state=None, t=None, board_cls=None):
    """A simulated board with config.json, secrets.json (a fresh agent's key) and the hub's CA."""
    created = admin("POST", "/admin/agents", {})
    flash = dualtest.tmpdir() + "/flash"
    cfg = {"sensors": [{"type": "sim", "name": "room", "points": [
        {"id": "t", "name": "Temperature", "unit": "C"}, {"id": "h", "quantity": "humidity", "unit": "%"}]}],
        "sample_s": 10, "upload_s": 60, "safe_pin": None, "log_level": "warning",
        "rules": [{"point": "t", "above": 0, "severity": 1}],
        "spool": {"flush_every": 1}}
    cfg.update(extra or {})
    t = t or FakeTime()
    board = (board_cls or sim.SimBoard)(flash, t.clock, t.sleep, state or sim.SimState())
    dualtest.write_bytes(flash + "/config.json", json.dumps(cfg).encode())
    dualtest.write_bytes(flash + "/secrets.json", json.dumps({"onboarding_key": created["onboarding_key"]}).encode())
    dualtest.write_bytes(flash + "/ca.der", dualtest.read_bytes(dualtest.env("MOCKHUB_CA_DER")))
    return board, config.load(flash), created["client_id"], t


def run_for(a, t, ms):
    end = t.now + ms
    while t.now < end:
        a.wait(min(a.step(), end - t.now))


def readings_of(cid, point):
    """The hub's rows (timestamp, data point, value, quality) of one data point."""
    return [r for r in admin("GET", "/admin/agents/%s/timeseries" % cid) if r[1] == point]


def test_readings_events_telemetry_and_model_arrive():
    board, cfg, cid, t = node()
    lines = []
    a = appmod.App(board, cfg, log=lines.append)
    run_for(a, t, 125000)  # 13 samples, uploads at 0, 60 s and 120 s
    a.close()
    assert a.samples == 13 and a.uploads == 3, lines
    temps = readings_of(cid, "t")
    assert len(temps) == 13 and len(readings_of(cid, "h")) == 13
    assert len(readings_of(cid, "node_uptime")) == 3 and len(readings_of(cid, "node_spool_depth")) == 3
    causes = readings_of(cid, "node_reset_cause")
    assert causes and causes[0][2] == "power-on"
    events = admin("GET", "/admin/agents/%s/events" % cid)
    assert len(events) == 1, events  # the temperature stays above 0: one event, no storm
    dsc = admin("GET", "/admin/agents/%s/dsc" % cid)
    names = [s["name"] for s in dsc["dataSources"]]
    assert names == ["room", "node"], dsc
    assert not admin("GET", "/admin/agents/%s/dropped" % cid)
    assert a.readings.pending() == 0 and a.events.pending() == 0


def test_the_onboarding_key_is_forgotten_once_onboarded():
    board, cfg, cid, t = node()
    a = appmod.App(board, cfg, log=lambda m: None)
    assert cfg.onboarding_key is not None
    a.step()  # sample, onboard, model, first upload
    assert a.uploads == 1 and a.agent.state == "ready"
    assert cfg.onboarding_key is None and a.agent.key is None  # its heap is free for the token and data
    a.close()
    a2 = appmod.App(board, config.load(board.flash_dir), log=lambda m: None)  # the next boot: key on flash
    t.now += 60000
    a2.step()
    assert a2.uploads == 1 and a2.upload_failures == 0 and a2.cfg.onboarding_key is None
    a2.close()
    assert len(readings_of(cid, "node_uptime")) == 2


def test_an_outage_loses_no_reading_and_honours_the_backoff():
    board, cfg, cid, t = node()
    a = appmod.App(board, cfg, log=lambda m: None)
    run_for(a, t, 5000)
    admin("POST", "/admin/faults", {"endpoint": "exchange", "status": 503, "retry_after": 120, "count": None})
    run_for(a, t, 300000)
    failures = a.upload_failures
    assert failures >= 1 and a.readings.pending() > 20
    assert failures <= 300 // 120 + 1  # Retry-After 120 s honoured, not one attempt per minute
    admin("DELETE", "/admin/faults")
    run_for(a, t, 160000)  # beyond the last Retry-After (120 s plus the agent's jitter, up to 25%)
    a.upload()  # what was sampled since the last scheduled upload
    a.close()
    assert a.readings.pending() == 0
    stamps = sorted(r[0] for r in readings_of(cid, "t"))
    assert len(stamps) == a.samples and len(set(stamps)) == a.samples


def test_retry_after_on_the_data_model_call_is_honoured():
    """A 429 with Retry-After to the data model's PUT (or the token, or a mapping) set the next upload
    one upload period on, not at the hub's time."""
    board, cfg, cid, t = node()
    a = appmod.App(board, cfg, log=lambda m: None)
    admin("POST", "/admin/faults", {"endpoint": "dsc", "status": 429, "retry_after": 900, "count": None,
                                    "client_id": cid})
    try:
        a.step()
    finally:
        admin("DELETE", "/admin/faults")
    assert a.upload_failures == 1 and a.uploads == 0
    assert a.not_before == t.now + 900000 and a.next_upload == a.not_before
    run_for(a, t, 899000)
    assert a.uploads == 0 and a.upload_failures == 1  # nothing asked of the hub inside its Retry-After
    run_for(a, t, 2000)
    a.close()
    assert a.uploads == 1 and a.readings.pending() == 0


class WrappingBoard(sim.SimBoard):
    """ticks_ms as an ESP32 counts them: modulo 2**30 ms (12.4 days)."""

    def ticks_ms(self):
        return super().ticks_ms() % (1 << 30)

    def ticks_diff(self, a, b):
        return (a - b + (1 << 29)) % (1 << 30) - (1 << 29)

    def ticks_add(self, a, b):
        return (a + b) % (1 << 30)


def test_uptime_goes_on_past_the_ticks_wrap():
    """node_uptime was ticks_ms // 1000: on an ESP32 it fell back to 0 every 12.4 days, as if the node
    had restarted."""
    board, cfg, cid, t = node({"sample_s": 86400, "upload_s": 86400}, board_cls=WrappingBoard)
    a = appmod.App(board, cfg, log=lambda m: None)
    run_for(a, t, 14 * 86400000 + 1000)  # 15 uploads, a day apart
    a.close()
    ups = sorted(readings_of(cid, "node_uptime"))
    assert len(ups) == 15, ups
    assert [int(u[2]) for u in ups] == [d * 86400 for d in range(15)], ups


def test_a_hovering_value_gives_one_event_per_crossing():
    r = appmod.Rule({"point": "t", "above": 30, "below": None, "hysteresis": 0.5, "severity": 2,
                     "description": None})
    seq = [29, 30.1, 29.9, 30.2, 29.7, 30.3, 29.4, 29.0, 30.5]
    got = [r.check(v) for v in seq]
    assert got == [None, "raised", None, None, None, None, "cleared", None, "raised"]
    low = appmod.Rule({"point": "v", "above": None, "below": 3.3, "hysteresis": 0.1, "severity": 1,
                       "description": "battery low"})
    assert [low.check(v) for v in (3.4, 3.2, 3.35, 3.25, 3.41)] == [None, "raised", None, None, "cleared"]
    assert low.text(3.2, "raised") == "battery low"


def test_deep_sleep_keeps_the_schedule_in_rtc_memory():
    state = sim.SimState()
    board, cfg, cid, t = node({"mode": "deep-sleep", "sample_s": 30, "upload_s": 120}, state)
    a = appmod.App(board, cfg, log=lambda m: None)
    due = a.step()
    assert due == 30000 and a.samples == 1 and a.uploads == 1
    dualtest.raises(Reset, a.wait, due)
    assert state.reset_cause == "deepsleep"
    b2 = board.rebooted()
    a2 = appmod.App(b2, cfg, log=lambda m: None)
    assert a2.next_sample == a.next_sample and a2.next_upload == a.next_upload
    assert a2.rules[0].active  # the event is not raised again after the wake
    assert a2.step() == 30000 and a2.samples == 1 and a2.uploads == 0  # sampled, upload not due yet
    a2.close()
    assert a2.readings.pending() == 1


def test_always_on_keeps_rule_states_and_the_backoff_across_a_reset():
    """A watchdog reset or a crash in always-on mode (RTC memory survives it, not a power cut): the rule
    that raised its event stays raised (it was raised again after every reset), and the hub's
    Retry-After is still honoured (the upload came at once after the reset)."""
    state = sim.SimState()
    board, cfg, cid, t = node(None, state)
    a = appmod.App(board, cfg, log=lambda m: None)
    a.step()  # sample (the rule raises its event), onboard, upload
    assert a.rules[0].active and a.uploads == 1
    admin("POST", "/admin/faults", {"endpoint": "exchange", "status": 503, "retry_after": 600, "count": None})
    try:
        t.now += 60000
        a.step()  # the upload fails: not before 600 s from now
        assert a.upload_failures == 1 and a.not_before > t.now + 500000
        dualtest.raises(Reset, board.watchdog_reset)
        a2 = appmod.App(board.rebooted(), cfg, log=lambda m: None)
        assert a2.rules[0].active
        assert a2.not_before == a.not_before and a2.next_upload >= a.not_before
        t.now += 10000
        a2.step()
        assert a2.samples == 1 and a2.uploads == 0  # sampled; no upload inside the backoff
        assert a2.events.pending() == 0  # the rule's event was not raised again
        a2.close()
    finally:
        admin("DELETE", "/admin/faults")
    assert len(admin("GET", "/admin/agents/%s/events" % cid)) == 1  # one event, not one per reset


def test_deep_sleep_wakes_that_only_sample_are_not_crashes():
    # found by the soak (tools/soak): each wake is a boot for the crash counter, and only an upload
    # used to mark it healthy, so three sample-only wakes in a row ended in safe mode.
    from firmware import power
    state = sim.SimState()
    board, cfg, cid, t = node({"mode": "deep-sleep", "sample_s": 30, "upload_s": 600}, state)
    wakes = []

    def app_main(b, c):
        wakes.append(b.unix_ms())
        if len(wakes) > 5:
            return  # the app returned: run_main returns None
        appmod.App(b, c, log=lambda m: None).run()

    assert power.run_main(app_main, board) is None  # never "SAFE MODE"
    assert len(wakes) == 6 and wakes[-1] - wakes[0] == 5 * 30000  # one upload, then five sample-only wakes
    assert power.CrashCounter(board.flash_dir).read()[0] == 1  # only the boot in progress is counted


def test_a_clock_set_back_leaves_no_gap_in_the_readings():
    # found by the soak: after NTP set a fast clock back by 2 h, sampling waited for the old schedule
    board, cfg, cid, t = node({"upload_s": 1200})
    a = appmod.App(board, cfg, log=lambda m: None)
    run_for(a, t, 25000)
    assert a.samples == 3
    t.now -= 2 * 3600 * 1000  # the board's clock is corrected back by two hours
    assert a.step() == 10000 and a.samples == 4  # sampled at once, then every sample_s again
    # the next upload is an upload period away on the new time, not on the old one (2 h 20 min away)
    assert t.now < a.next_upload <= t.now + 1200 * 1000
    uploads = a.uploads
    run_for(a, t, 1210 * 1000)
    assert a.uploads == uploads + 1
    a.upload()
    a.close()
    assert len(readings_of(cid, "t")) == a.samples  # none lost across the set-back


class RecordingBoard(sim.SimBoard):
    def set_unix_ms(self, ms):
        self.state.set_calls = getattr(self.state, "set_calls", []) + [ms]
        super().set_unix_ms(ms)


def test_without_ntp_the_clock_comes_from_the_gateway():
    # UDP 123 is often closed in plant networks: before, the node never sampled nor uploaded
    import time
    board, cfg, cid, t = node({"ntp": {"host": "127.0.0.1", "timeout_ms": 200}})
    board = RecordingBoard(board.flash_dir, t.clock, t.sleep, board.state)
    board.state.clock_offset_ms = -t.now  # the board's clock after a power cut: 1970
    a = appmod.App(board, cfg, log=lambda m: None)
    dualtest.write_bytes(board.flash_dir + "/agent/time", b"1767225600")  # last known: 2026-01-01
    assert not a.clock_set()
    a.step()  # NTP gets no answer; the gateway's Date sets the clock
    real = int(time.time() * 1000)
    assert a.clock_set() and abs(board.unix_ms() - real) < 5000, (board.unix_ms(), real)
    # the last known time went first (certificate dates are checked against the board clock on ESP32)
    assert board.state.set_calls[0] == 1767225600000 and len(board.state.set_calls) == 2
    assert abs(int(dualtest.read_bytes(board.flash_dir + "/agent/time")) * 1000 - real) < 5000
    run_for(a, t, 25000)
    assert a.samples == 3 and a.uploads == 1  # the schedule starts again from the true time
    a.upload()
    a.close()
    stamps = [r[0] for r in readings_of(cid, "t")]
    assert len(stamps) == a.samples and all(s.startswith(iso_day(real)) for s in stamps), stamps


def test_a_drifting_board_clock_follows_the_gateway():
    # NTP is asked only while the clock is unset; in deep sleep an ESP32's clock drifts by minutes a day
    import time
    board, cfg, cid, t = node()
    board.state.clock_offset_ms += 150000  # the board runs 2.5 min ahead
    a = appmod.App(board, cfg, log=lambda m: None)
    a.follow_gateway_clock = True
    a.step()  # the first upload: its answers carry the gateway's Date
    assert a.uploads == 1
    assert abs(board.unix_ms() - int(time.time() * 1000)) < 2500, board.unix_ms() - int(time.time() * 1000)
    a.follow_gateway_clock = False  # (fake time from here on)
    run_for(a, t, 20000)
    a.upload()
    a.close()
    stamps = sorted(r[0] for r in readings_of(cid, "t"))
    # the first reading (before the upload) was 2.5 min ahead, those after it are not
    assert len(stamps) == a.samples and stamps[-2] < iso(int(time.time() * 1000) + 30000), stamps


class CountingWdt:
    def __init__(self):
        self.feeds = 0

    def feed(self):
        self.feeds += 1


def test_the_watchdog_is_fed_while_an_upload_moves_bytes():
    # a backlog of days takes minutes to send on a slow link: fed only after the whole upload, a 60 s
    # watchdog reset the node mid-upload, every time (each reset a failed boot: safe mode after three)
    board, cfg, cid, t = node({"watchdog_ms": 60000, "upload_s": 3600})
    a = appmod.App(board, cfg, log=lambda m: None)
    a.step()  # onboarding, model, first upload
    run_for(a, t, 2000 * 1000)  # 200 readings queued
    a.wdt = wdt = CountingWdt()
    a.upload()
    assert a.uploads == 2 and not a.readings.pending()
    assert wdt.feeds > 20, wdt.feeds  # fed as the body went out, not once at the end
    a.close()


def iso(ms):
    from mindconnect.clock import iso8601
    return iso8601(ms)


def iso_day(ms):
    from mindconnect.clock import iso8601
    return iso8601(ms)[:10]


def test_a_watermark_upload_keeps_the_regular_schedule():
    # found by the soak: an upload for a full spool pushed the regular upload a period further each time
    board, cfg, cid, t = node({"upload_s": 600, "spool": {"flush_every": 1, "watermark_bytes": 200}})
    a = appmod.App(board, cfg, log=lambda m: None)
    a.step()
    regular = a.next_upload
    assert a.uploads == 1 and regular == t.now + 600000
    run_for(a, t, 300000)
    assert a.uploads > 3 and a.next_upload == regular  # early uploads, schedule unchanged
    a.close()
    assert len(readings_of(cid, "t")) >= a.samples - 2


def test_the_backoff_survives_deep_sleep():
    # found by the soak: after each wake a full spool retried at once, whatever the hub had asked
    state = sim.SimState()
    board, cfg, cid, t = node({"mode": "deep-sleep", "sample_s": 30, "upload_s": 3600,
                               "spool": {"flush_every": 1, "watermark_bytes": 100}}, state)
    admin("POST", "/admin/faults", {"endpoint": "exchange", "status": 503, "retry_after": 600, "count": None})
    try:
        a = appmod.App(board, cfg, log=lambda m: None)
        a.step()  # the first upload: the hub says 503, Retry-After 600
        assert a.upload_failures == 1 and a.not_before >= t.now + 590000
        dualtest.raises(Reset, a.wait, 30000)
        for _ in range(5):  # five wakes with the spool above its watermark: none tries to upload
            a2 = appmod.App(board.rebooted(), cfg, log=lambda m: None)
            assert a2.not_before == a.not_before
            a2.step()
            assert a2.upload_failures == 1 and a2.uploads == 0
            dualtest.raises(Reset, a2.wait, 30000)
    finally:
        admin("DELETE", "/admin/faults")


def test_the_readings_are_on_flash_before_an_upload_starts():
    # found by the soak: a power cut during an upload (Wi-Fi, TLS, onboarding, token: the longest part
    # of a wake) lost the wake's reading when the flush policy had not flushed it yet
    from mindconnect.spool import Spool
    board, cfg, cid, t = node({"spool": {"flush_every": 10, "flush_ms": 0}})
    admin("POST", "/admin/faults", {"endpoint": "register", "status": 503, "count": None})
    try:
        a = appmod.App(board, cfg, log=lambda m: None)
        a.step()  # a sample, then the first upload, which fails at onboarding
        assert a.samples == 1 and a.upload_failures == 1 and a.uploads == 0
        assert a.readings.unflushed == 0
        # the power goes now: a spool opened afresh on the same flash finds the reading and the telemetry
        sp = Spool(board.flash_dir.rstrip("/") + appmod.SPOOL_DIR + "/ts", cfg.spool["max_bytes"])
        assert sp.pending() == 2
        sp.close()
    finally:
        admin("DELETE", "/admin/faults")


def test_a_reading_of_every_point_fits_however_many_points_the_model_has():
    # (here, not in test_items: the data model of 11 points needs more than that module's heap)
    from mindconnect import items
    # 10 DOUBLE points with 36-character ids (the longest the firmware's config takes) and the longest
    # floats: over 1 KB in one reading; the default buffer grows with the model instead of refusing it
    pts = [{"id": "p%035d" % i, "name": "n", "type": "DOUBLE", "unit": "C"} for i in range(10)]
    pts.append({"id": "when", "name": "w", "type": "TIMESTAMP", "unit": ""})
    model = items.DataModel({"configurationId": "wide", "dataSources": [{"name": "s", "dataPoints": pts}]})
    enc = items.RecordEncoder(model)
    values = [(p["id"], -2.2250738585072014e-308, 4294967295) for p in pts[:-1]]
    values.append(("when", 4107542399999, 4294967295))
    rec = bytes(enc.encode(4107542399999, values))
    assert len(rec) > 1100 and len(json.loads(rec)["values"]) == 11
    small = {"configurationId": "narrow", "dataSources": [{"name": "s", "dataPoints": pts[:3]}]}
    assert len(items.RecordEncoder(items.DataModel(small)).buf) == items.RECORD_MAX


class _NanSensor:
    def read(self):
        return {"temperature": float("nan")}


def test_int_points_are_rounded_and_a_nan_costs_only_its_own_value():
    # an INT point took the sensor's float and every reading went aside; one sensor's NaN took the others'
    # values (and their rules) with it
    board, cfg, cid, t = node({"sensors": [
        {"type": "sim", "name": "room", "points": [{"id": "n", "type": "INT", "unit": "C"}]},
        {"type": "sim", "name": "glitch", "points": [{"id": "x", "unit": "C"}]}],
        "rules": [{"point": "n", "above": 0, "severity": 1}]})
    lines = []
    a = appmod.App(board, cfg, log=lines.append)
    a.sensors[1] = (a.sensors[1][0], _NanSensor())
    for _ in range(3):
        a.sample(board.unix_ms())
        t.now += 10000
    assert a.readings.pending() == 3 and a.events.pending() == 1, lines
    out = []
    a.readings.batch(4000).write_to(lambda b: out.append(bytes(b)))
    rows = json.loads(b"".join(out))
    assert [[v["dataPointId"] for v in r["values"]] for r in rows] == [["n"]] * 3
    assert all("." not in r["values"][0]["value"] for r in rows)
    assert "glitch" in lines[0] and "left out" in lines[0]
    try:
        open(a.store_dir + "/aside.log").close()
        raise AssertionError("a reading was set aside")
    except OSError:
        pass


def test_a_mapping_the_hub_refuses_does_not_stop_the_readings():
    # the asset a mapping names was deleted in Insights Hub (the mapping POST answers 404 for good), or
    # someone mapped the point elsewhere (409, a conflict): the data model is in place and the hub takes
    # the readings, but the app synced the model before every exchange and sent nothing at any upload
    # until the spool overflowed; a config change (a visit) was the only way out
    board, cfg, cid, t = node({"mappings": [{"point": "t", "entity_id": "e" * 32, "property_set": "env",
                                              "property": "temperature"}]})
    admin("POST", "/admin/faults", {"client_id": cid, "endpoint": "mappings", "status": 404, "count": None,
                                    "message": "asset not found"})
    lines = []
    a = appmod.App(board, cfg, log=lines.append)
    run_for(a, t, 125000)  # uploads at 0, 60 s and 120 s
    assert a.uploads == 3 and a.readings.pending() == 0, lines
    assert len(readings_of(cid, "t")) == 13
    assert [m for m in lines if "asset not found" in m], lines
    admin("DELETE", "/admin/faults")
    run_for(a, t, 60000)  # the next upload asserts the mapping again: made now
    a.close()
    assert [m["dataPointId"] for m in admin("GET", "/admin/agents/%s/mappings" % cid)] == ["t"]


def test_a_mapping_deleted_in_insights_hub_is_made_again_within_a_day():
    # an always-on node synced its data model and mappings once a boot: a mapping deleted in Insights Hub
    # afterwards was never made again (the readings of that point reached no asset) until a reboot
    board, cfg, cid, t = node({"mappings": [{"point": "t", "entity_id": "e" * 32, "property_set": "env",
                                              "property": "temperature"}],
                                 "watchdog_ms": 0})  # time jumps by hours here
    admin("POST", "/admin/clock", {"now": t.now // 1000})  # the hub follows the board's fake time
    lines = []
    a = appmod.App(board, cfg, log=lines.append)
    run_for(a, t, 5000)
    ids = [m["id"] for m in admin("GET", "/admin/agents/%s/mappings" % cid)]
    assert len(ids) == 1
    assert a.agent._authed("DELETE", "/api/mindconnect/v3/dataPointMappings/" + ids[0]).status == 204
    for _ in range(25):  # a day and an hour, the hub's clock along; an upload each hour
        t.now += 3600000
        admin("POST", "/admin/clock", {"now": t.now // 1000})
        run_for(a, t, 1000)
    a.close()
    admin("POST", "/admin/clock", {"now": None})
    assert [m["dataPointId"] for m in admin("GET", "/admin/agents/%s/mappings" % cid)] == ["t"], lines


def test_a_clock_corrected_back_by_the_gateway_leaves_no_gap():
    # the board's clock ran an hour fast (an ESP32's RC clock in deep sleep drifts by minutes a day): the
    # upload's answer set it back, and step() returned the wait until the next sample on the old clock, an
    # hour and 10 s: no reading for an hour (a deep-sleeping board slept it; a clock years ahead, years)
    board, cfg, cid, t = node()
    board.state.clock_offset_ms += 3600000
    a = appmod.App(board, cfg, log=lambda m: None)
    a.follow_gateway_clock = True
    due = a.step()
    a.follow_gateway_clock = False  # (fake time from here on)
    assert a.uploads == 1 and due == 10000, due
    run_for(a, t, 60000)
    a.close()
    assert a.samples == 6, a.samples  # one each 10 s
    # set back by a few seconds: the next sample comes after one wait (one wake in deep sleep), not two
    board, cfg, cid, t = node()
    board.state.clock_offset_ms += 5000
    a = appmod.App(board, cfg, log=lambda m: None)
    a.follow_gateway_clock = True
    due = a.step()
    a.follow_gateway_clock = False
    t.now += due
    a.step()
    a.close()
    assert a.samples == 2 and due == 10000, due

def test_a_refused_onboarding_key_does_not_upload_at_every_sample():
    # NEEDS_KEY (the key refused, the agent waits a day or for a new key): the failed upload set no
    # backoff, so once the spool held its watermark every sample tried an upload, which appended a
    # telemetry reading each time (the spool filled twice as fast, the oldest readings dropped sooner)
    board, cfg, cid, t = node({"spool": {"flush_every": 1, "watermark_bytes": 300}})
    admin("POST", "/admin/faults", {"client_id": cid, "endpoint": "register", "status": 401, "count": None})
    try:
        a = appmod.App(board, cfg, log=lambda m: None)
        run_for(a, t, 305000)  # 31 samples, regular uploads at 0, 60 .. 300 s
    finally:
        admin("DELETE", "/admin/faults")
    a.close()
    assert a.agent.state == "needs_key" and a.uploads == 0
    assert a.upload_failures <= 6, a.upload_failures
    assert a.readings.pending() == a.samples + a.upload_failures  # a telemetry reading per attempt

def test_a_time_file_ahead_of_the_clock_is_renewed():
    # the lower bound for the clock after a power cut was renewed only once the clock passed it by a day:
    # a time ahead of the clock (a clock set back, a provisioning computer's clock ahead) stayed, and after
    # a power cut without NTP the board started at that time; with certificate dates checked (ESP32)
    # against it, the gateway's certificate had expired there and the clock was never set
    board, cfg, cid, t = node()
    a = appmod.App(board, cfg, log=lambda m: None)
    dualtest.write_bytes(board.flash_dir + "/agent/time", b"4102444800")  # 2100
    run_for(a, t, 5000)
    a.close()
    kept = int(dualtest.read_bytes(board.flash_dir + "/agent/time")) * 1000
    assert 0 <= board.unix_ms() - kept < 10000, kept


def test_a_small_spool_takes_a_reading_of_every_point():
    # spool.max_bytes 4096 (the least the config check takes) makes segments of 1 KB, and a reading of
    # 12 points with long ids needs 1119 bytes: the first sample raised ConfigError out of the spool, the
    # reading was lost and the app stopped at the REPL as for a bad config (a visit)
    pts = [{"id": "p%035d" % i, "unit": "C"} for i in range(12)]
    board, cfg, cid, t = node({"sensors": [{"type": "sim", "name": "wide", "points": pts}], "rules": [],
                               "spool": {"max_bytes": 4096, "flush_every": 1}})
    a = appmod.App(board, cfg, log=lambda m: None)
    a.sample(board.unix_ms())
    a.close()
    assert a.readings.pending() == 1 and a.record_bytes > 1100


def test_the_step_that_sets_the_clock_samples_and_uploads():
    # after a power cut the step that set the clock returned a whole sample period: the first reading and
    # the first upload came a period late (a deep-sleeping node with sample_s 3600: an hour, one reading less)
    board, cfg, cid, t = node({"ntp": {"host": "127.0.0.1", "timeout_ms": 200}})
    board.state.clock_offset_ms = -t.now  # the board's clock after a power cut: 1970
    a = appmod.App(board, cfg, log=lambda m: None)
    due = a.step()  # NTP gets no answer; the gateway's Date sets the clock
    assert a.clock_set() and a.samples == 1 and a.uploads == 1, (a.samples, a.uploads)
    assert due == 10000, due
    a.close()


class _CrashingAgent:
    def gateway_time_ms(self):
        raise MemoryError("TLS handshake")

    def close(self):
        pass


def test_a_crash_while_asking_the_gateway_for_the_time_leaves_the_clock_unset():
    # the last time known (the time file) is set as the clock's lower bound for the TLS handshake: a crash
    # there (a MemoryError in the tight first connection) left it as the board clock, which a reset keeps,
    # and the next boot took it for the time: readings stamped days or months early until an upload
    board, cfg, cid, t = node({"ntp": {"host": "127.0.0.1", "timeout_ms": 200}})
    board.state.clock_offset_ms = -t.now  # the board's clock after a power cut: 1970
    a = appmod.App(board, cfg, agent=_CrashingAgent(), log=lambda m: None)
    dualtest.write_bytes(board.flash_dir + "/agent/time", b"1767225600")  # last known: 2026-01-01
    dualtest.raises(MemoryError, a.step)
    a.close()
    assert not a.clock_set() and a.samples == 0
