"""The sensor-node application: sample into the spool, upload on a schedule, events, self-telemetry.

    app = App(board, cfg)      # cfg: firmware.config.Config
    app.step()                 # do whatever is due now (sample, upload); returns ms until the next due
    app.run()                  # forever: step, then wait (always-on) or deep-sleep until the next due
    main(board, cfg)           # main.py's entry point (through firmware.power.run_main)

Time comes only from the board (ticks_ms, sleep_ms, unix_ms), so a test can drive a simulated year.
The schedule is kept in Unix ms (board.unix_ms): it survives deep sleep in RTC memory along with the
threshold rules' state and the counters, and an upload that failed waits for the agent's retry_at_ms.
Readings and events wait in two spools under <flash>/spool until the hub has taken them.
"""

import gc
import json

import firmware
from firmware import power, sensors
from mindconnect import items
from mindconnect.errors import ConfigError, MindConnectError, OnboardingRequired, Rejected
from mindconnect.spool import Spool

STORE_DIR = "/agent"  # the agent's credential store under the flash dir (tools/provision.py agrees)
SPOOL_DIR = "/spool"
CLOCK_SET_MS = 1704067200000  # 2024-01-01: a board clock below this was never set
TIME_FILE = "/time"  # in the store: the last time known (unix seconds), a lower bound after a power cut
TIME_KEEP_MS = 86400000  # the time file is renewed once a day (flash wear)
RECORD_OVERHEAD = 6  # bytes a spool record adds to its payload (length and CRC)
LEVELS = ("debug", "info", "warning", "error")


class Rule:
    """A threshold with hysteresis: one event when the value crosses the limit, one when it is back.

    A value hovering at the limit gives a single event: the rule re-arms only once the value is back
    beyond limit -/+ hysteresis.
    """

    def __init__(self, spec):
        self.point = spec["point"]
        self.above = spec["above"] is not None
        self.limit = spec["above"] if self.above else spec["below"]
        self.hysteresis = spec["hysteresis"]
        self.severity = spec["severity"]
        self.description = spec["description"]
        self.active = False

    def check(self, value):
        """'raised', 'cleared' or None for this value."""
        if self.above:
            out = value > self.limit
            back = value <= self.limit - self.hysteresis
        else:
            out = value < self.limit
            back = value >= self.limit + self.hysteresis
        if not self.active and out:
            self.active = True
            return "raised"
        if self.active and back:
            self.active = False
            return "cleared"
        return None

    def text(self, value, change):
        if change == "raised":
            if self.description:
                return self.description
            return "%s %s %s: %s" % (self.point, "above" if self.above else "below", self.limit, value)
        return "%s back within %s: %s" % (self.point, self.limit, value)


def event_id(rand):
    """A random UUID (version 4) as text."""
    b = bytearray(rand(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = "".join("%02x" % x for x in b)
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


class App:
    """One node: its sensors, two spools, the agent (made on first upload) and the schedule."""

    _time_kept = None  # the time in the time file (ms), read on the first step
    # the board clock follows the gateway's Date after each upload; tests that run the board on a fake
    # clock against a hub on real time turn it off
    follow_gateway_clock = True

    def __init__(self, board, cfg, agent=None, log=None, rand=None):
        self.board = board
        self.cfg = cfg
        self._out = log or print
        self._level = LEVELS.index(cfg.log_level)
        flash = board.flash_dir.rstrip("/")
        self.store_dir = flash + STORE_DIR
        _mkdir(self.store_dir)
        _mkdir(flash + SPOOL_DIR)
        # the data model first, then its garbage (the description, JSON, hashing) collected: the
        # long-lived buffers below are made in one stretch instead of around that garbage's holes
        self.model = firmware._once("datamodel", "model", cfg)
        sp = cfg.spool
        flush_ms = sp["flush_ms"] or None
        self.encoder = items.RecordEncoder(self.model)
        # flush_every 1 writes each record at once: a write buffer for several records would stay unused;
        # a segment holds the largest reading (a small max_bytes gives small segments)
        mb = sp["max_bytes"]
        self.readings = Spool(flash + SPOOL_DIR + "/ts", mb, flush_every=sp["flush_every"],
                              flush_ms=flush_ms, ticks_ms=board.ticks_ms,
                              buf_bytes=64 if sp["flush_every"] == 1 else 512,
                              segment_bytes=max(min(16384, mb // 4), len(self.encoder.buf) + RECORD_OVERHEAD))
        self.events = Spool(flash + SPOOL_DIR + "/ev", max(4096, sp["max_bytes"] // 8),
                            flush_every=1, ticks_ms=board.ticks_ms, buf_bytes=64)
        self.sensors = [(s, sensors.build(s, board)) for s in cfg.sensors]
        self.rules = [Rule(r) for r in cfg.rules]
        if rand is None:
            from mindconnect.compat import urandom as rand
        self.rand = rand
        self.agent = agent
        self.model_synced = -86400000  # board ms of the last sync_model
        self.record_bytes = 64  # size of the last reading record, for the watermark estimate
        self.samples = 0  # readings appended since this boot
        self.uploads = 0
        self.upload_failures = 0
        self.not_before = 0  # no upload attempt before this (the hub's or the agent's backoff; kept in RTC)
        self.healthy = False
        self.up_ms = self._up_ticks = board.ticks_ms()  # since the boot (ticks start there)
        self.wifi = None
        self.wdt = board.wdt(cfg.watchdog_ms) if cfg.watchdog_ms else None
        if cfg.wifi:
            from firmware.net import Wifi
            w = cfg.wifi
            # fed while a join is awaited: the wait has its own limit (wifi.timeout_s, up to 600 s, over
            # the default watchdog_ms), and an access point down must not end in crash safe mode
            self.wifi = Wifi(board.wlan(), w["ssid"], cfg.wifi_password.reveal(), board,
                             w["timeout_s"] * 1000, w["backoff_max_s"] * 1000,
                             self._progress if self.wdt is not None else None)
        self.rtc = power.RtcRecord(board)
        now = board.unix_ms()
        self.next_sample = now
        self.next_upload = now  # the first cycle uploads at once: the data model goes up early
        self._restore()
        # The garbage of building all this goes before the first sample: the spool files it opens stay
        # low in the heap instead of above that garbage, where they would cut the room onboarding needs.
        gc.collect()

    # -- logging -----------------------------------------------------------------------------------

    def log(self, level, msg):
        if LEVELS.index(level) >= self._level:
            self._out("%s: %s" % (level, msg))

    # -- state across deep sleep -------------------------------------------------------------------

    def _restore(self):
        """The schedule, rule states and counters from RTC memory (after deep sleep or a reset)."""
        raw = self.rtc.load()
        if raw is None:
            return
        try:
            st = json.loads(raw)
            self.next_sample, self.next_upload = st["s"], st["u"]
            self.upload_failures = st["f"]
            self.not_before = st.get("b", 0)
            for rule, active in zip(self.rules, st["r"]):
                rule.active = bool(active)
        except (ValueError, KeyError, TypeError):
            self.log("warning", "RTC memory held no usable schedule; starting afresh")

    def _save(self):
        st = {"s": self.next_sample, "u": self.next_upload, "f": self.upload_failures, "b": self.not_before,
              "r": [1 if r.active else 0 for r in self.rules]}
        self.rtc.save(json.dumps(st).encode())

    def dropped(self):
        """Readings dropped by the full spool since it was made (the spool keeps the count on flash)."""
        return self.readings.dropped

    # -- work --------------------------------------------------------------------------------------

    def clock_set(self):
        return self.board.unix_ms() >= CLOCK_SET_MS

    def step(self):
        """Do what is due now; returns ms until the next thing is due (0 when something is due)."""
        now = self.board.unix_ms()
        if not self.clock_set():
            self._set_clock()
            self._progress()
            if not self.clock_set():
                return 1000 * self.cfg.sample_s
            now = self.board.unix_ms()  # set: sample and upload now (_clock_now_set)
        period = self.cfg.sample_s * 1000
        if self.next_sample - now > period:  # the clock was set back (NTP corrected a fast clock)
            self._set_back(now, now)  # sample on the new time, leave no gap
        if self._time_kept is None:
            self._time_kept = self._last_time_ms()
        if not 0 <= now - self._time_kept < TIME_KEEP_MS:  # ahead of the clock too: a bound not to keep
            self._keep_time(now)
        if now >= self.next_sample:
            self.sample(now)
            self.next_sample = _next(self.next_sample, now, period)
            self._progress()
        due_bytes = self.readings.pending() * (self.record_bytes + RECORD_OVERHEAD)
        if now >= self.next_upload or (due_bytes >= self.cfg.spool["watermark_bytes"]
                                       and not self._backing_off(now)):
            self.upload()
            self._progress()
            if not self.healthy:
                power.mark_healthy(self.board)
                self.healthy = True
        self.readings.tick()
        now = self.board.unix_ms()
        if self.next_sample - now > period:  # the upload set the clock back (the gateway's Date)
            self._set_back(now, now + period)  # the next sample a period from now, not on the old time
        return max(0, min(self.next_sample, self.next_upload) - now)

    def _set_back(self, now, at):
        """After the clock was set back: the next sample at `at`; an upload (or a backoff) due on the old
        time comes no later than a period from now."""
        self.next_sample = at
        up = now + self.cfg.upload_s * 1000
        if self.next_upload > up:
            self.next_upload = up
        if self.not_before > up:
            self.not_before = up

    def _progress(self):
        """Feed the watchdog: only called after a piece of work completed."""
        if self.wdt is not None:
            self.wdt.feed()

    def _backing_off(self, now):
        """A watermark upload waits for the backoff too (it survives deep sleep in self.not_before)."""
        return now < self.not_before

    def sample(self, now):
        """Read every sensor into one reading (spooled) and check the rules."""
        values = []
        for scfg, driver in self.sensors:
            try:
                got = driver.read()
            except Exception as e:  # a sensor fault must not stop the others nor the uploads
                self.log("warning", "sensor %s: %s" % (scfg["name"], e))
                continue
            for p in scfg["points"]:
                v = got.get(p.get("quantity") or sensors.QUANTITIES[scfg["type"]][0])
                if v is None:
                    continue
                if v != v or v - v != 0:  # NaN or infinite: this value is left out, not the reading
                    self.log("warning", "sensor %s: %s is %s, left out" % (scfg["name"], p["id"], v))
                    continue
                if p["type"] != "DOUBLE":  # INT or LONG (configcheck): the sensor's value rounded
                    v = int(round(v))
                values.append((p["id"], v))
        if values and self._append(now, values):
            self.log("debug", "reading %d" % now)
            for rule in self.rules:
                for point, v in values:
                    if point == rule.point:
                        self._check_rule(rule, now, v)
        self.samples += 1

    def _append(self, ts, values):
        if self.encoder is None:
            self.encoder = items.RecordEncoder(self.model)
        try:
            rec = self.encoder.encode(ts, values)
        except (items.InvalidReading, ConfigError) as e:  # ConfigError: over the encoder's buffer
            self._aside().add("readings", str(e), items.reading_text(ts, values))
            self.log("warning", "reading set aside: %s" % e)
            return False
        self.readings.append(rec)
        self.record_bytes = len(rec)
        return True

    def _aside(self):
        return items.AsideLog(self.store_dir + "/aside.log")

    def _check_rule(self, rule, now, value):
        change = rule.check(value)
        if change is None:
            return
        sev = rule.severity if change == "raised" else 3
        text = rule.text(value, change)
        rec = items.event_record(sev, text, "ThresholdViolation", now, event_id(self.rand),
                                 details={"point": rule.point, "value": value, "state": change})
        self.events.append(rec)
        self._save()  # always-on too: a watchdog reset or crash must not raise it again, nor lose its clearing
        self.log("info", "event: %s" % text)

    def telemetry(self, now):
        """The node's own health as one reading of the "node" data source."""
        b = self.board
        # ticks wrap (every 12.4 days on the ESP32): the uptime adds up their differences, one an upload
        t = b.ticks_ms()
        self.up_ms += b.ticks_diff(t, self._up_ticks)
        self._up_ticks = t
        values = [("node_spool_depth", self.readings.pending()), ("node_dropped", self.dropped()),
                  ("node_reset_cause", b.reset_cause()), ("node_uptime", self.up_ms // 1000),
                  ("node_upload_failures", self.upload_failures)]
        heap = b.free_heap()
        if heap is not None:
            values.append(("node_free_heap", heap))
        rssi = self.wifi.rssi() if self.wifi else None
        if rssi is not None:
            values.append(("node_rssi", rssi))
        return values

    def _set_clock(self):
        if not self._network():
            self.log("warning", "clock not set yet (no network): sampling waits")
            return
        ntp = self.cfg.ntp
        if ntp:
            from firmware.net import ntp_sync
            if ntp_sync(self.board, ntp["host"], ntp["timeout_ms"]):
                self.log("info", "clock set from NTP")
                self._clock_now_set()
                return
            # NTP's wait (DNS, ntp.timeout_ms) is over; the gateway's (DNS, up to 30 s to connect) comes
            # next, and both together could pass the least watchdog_ms (45 s) unfed
            self._progress()
        # No NTP (UDP 123 is often closed in plant networks): the gateway's Date, over the same
        # verified TLS as everything else. Boards that check certificate dates (ESP32) need a plausible
        # clock for that handshake: the last time known (on flash) is set first, a lower bound.
        before = self.board.unix_ms()
        self.board.set_unix_ms(max(before, self._last_time_ms()))
        got = None
        try:
            got = self._agent().gateway_time_ms()
        except (MindConnectError, OSError) as e:
            self.log("warning", "time from the gateway: %s" % e)
        finally:
            if got is None:  # a crash too: a reset keeps the board clock, and the bound is not the time
                self.board.set_unix_ms(before)
        if got is None:
            self.log("warning", "clock not set yet (no NTP, no time from the gateway): sampling waits")
            return
        self.board.set_unix_ms(got)
        self.log("info", "clock set from the gateway's Date (NTP %s)" % ("did not answer" if ntp else "is off"))
        self._clock_now_set()

    def _clock_now_set(self):
        """The schedule made on the unset clock starts again from the true time: sample and upload now."""
        now = self.board.unix_ms()
        self.next_sample = self.next_upload = now
        self._keep_time(now)

    def _last_time_ms(self):
        try:
            with open(self.store_dir + TIME_FILE) as f:
                return int(f.read()) * 1000
        except (OSError, ValueError):
            return CLOCK_SET_MS

    def _keep_time(self, now):
        """The time as a lower bound for the next power-on (temp file renamed into place)."""
        import os
        path = self.store_dir + TIME_FILE
        try:
            with open(path + ".tmp", "w") as f:
                f.write(str(now // 1000))
            os.rename(path + ".tmp", path)
        except OSError as e:
            self.log("warning", "time file: %s" % e)
        self._time_kept = now

    def _network(self):
        return self.wifi is None or self.wifi.connect()

    def _agent(self):
        """The agent, made on first use (the clock from the gateway, or the first upload)."""
        if self.agent is None:
            # collected before and after: the agent's modules, then onboarding's TLS context and HTTP
            # buffers each find the room the garbage before them left (measured: 2 KB less minimum each)
            gc.collect()
            self.agent = self._make_agent()
            gc.collect()
        return self.agent

    def _make_agent(self):
        from mindconnect.agent import Agent
        from mindconnect.clock import Clock
        from mindconnect.transport import Transport
        with open(self.cfg.ca_file, "rb") as f:
            ca = f.read()
        key = self.cfg.onboarding_key.reveal() if self.cfg.onboarding_key else None
        # the watchdog is fed as bytes move: a backlog of days (MBs at the link's pace) takes longer
        # than watchdog_ms, and a reset mid-upload would send it again from the start, every time
        io = self._progress if self.wdt is not None else None
        return Agent(self.store_dir, Transport(ca_der=ca, on_io=io).connect, onboarding_key=key,
                     clock=Clock(self.board.unix_ms), log=lambda m: self.log("warning", m))

    def _mappings(self):
        if not self.cfg.mappings:
            return []
        return firmware._once("datamodel", "mappings", self.cfg, self.agent.store.current().client_id)

    def upload(self):
        """Telemetry into the spool, then model (when changed), readings and events to the hub."""
        now = self.board.unix_ms()
        self._append(now, self.telemetry(now))
        # on flash before Wi-Fi, TLS and the token: a power cut in the longest part of a wake must not
        # take the readings the flush policy still holds in RAM (one sync per upload)
        self.readings.flush()
        period = self.cfg.upload_s * 1000
        if now >= self.next_upload:  # an early upload (spool watermark) keeps the regular schedule
            self.next_upload = _next(self.next_upload, now, period)
        if not self._network():
            self._failed("Wi-Fi: %s" % self.wifi.last_error, self.next_upload)  # no watermark retries before it
            return
        if self.agent is None:
            # the record encoder's 1 KB buffer waits for the next reading (_append makes it again): the
            # first upload of a boot (agent, onboarding, token, data model) is the tightest part
            self.encoder = None
        try:
            # the CA file is read here: emptied, garbled or gone since the boot's check (a flash fault, a
            # provisioning cut short), this raised out of the upload (the REPL, or a crash each boot):
            # sampling stopped until a visit. Now an upload failure, tried again a period later
            a = self._agent()
        except (MindConnectError, OSError, ValueError) as e:
            self._failed("agent: %s" % e, now + period)
            return
        try:
            if not 0 <= now - self.model_synced < 86400000:  # once a boot, and a day (the agent looks again)
                if a.state == "new":
                    a.onboard()
                if a.state == "ready":  # the key is spent (1-2 KB): its heap goes to the token and the model
                    a.key = self.cfg.onboarding_key = None
                gc.collect()  # the key and onboarding's leftovers, before the token request
                _loaded(("jwt", "renew"), a.authorize)
                try:
                    _loaded(("dsc",), a.sync_model, self.model, self._mappings())
                    self.model_synced = now
                except Rejected as e:
                    # a mapping refused (a conflict, an asset deleted) must not stop the readings once the
                    # data model is in place: they go, and the mappings are asserted again next upload
                    if (a.store.read("model") or {}).get("dsc") != self.model.hash:
                        raise
                    self.log("warning", str(e))
            report = a.exchange(timeseries=self.readings if self.readings.pending() else None,
                                events=self.events if self.events.pending() else None)
        except OnboardingRequired as e:
            self._failed(str(e), self.next_upload)  # no watermark upload before it: nothing changes until then
            return
        except MindConnectError as e:
            # ConfigError too (an RSA key file damaged or gone, an input the agent refuses): raised out of
            # here, power.py took it for a bad config.json and left the node at the REPL, sampling stopped
            # until a visit; the message names the cause, never a secret
            ra = getattr(e, "retry_after", None)  # a 429/5xx to the token, data model or mapping calls
            self._failed(str(e), max(a.retry_at_ms or 0, now + (ra * 1000 if ra else period)))
            a.close()
            return
        except OSError as e:
            self._failed("network: %s" % e, now + period)
            a.close()
            return
        self._follow_gateway_clock(a)
        retry = report.retry_at_ms
        if retry is not None:
            self._failed(report.outcomes[-1].reason, retry)
            return
        self.uploads += 1
        self.not_before = 0
        self.log("info", "upload %d: %d readings, %d events sent, %d queued" % (
            self.uploads, report.count("sent"), report.count("sent", "events"), self.readings.pending()))

    def _follow_gateway_clock(self, a):
        """Board clocks drift (in deep sleep the ESP32 keeps time on an RC oscillator: minutes a day), and
        NTP is asked only while the clock is unset: the Date of the upload's last answer (1 s resolution)
        corrects a difference of 2 s or more; so does the offset the agent took from it (a token refused
        for the clock)."""
        c = a.clock
        if not self.follow_gateway_clock:
            return
        skew = c.last_skew_s or 0
        if skew >= 2 or skew <= -2 or c.offset_ms:
            was = self.board.unix_ms()
            self.board.set_unix_ms(c.now_ms() + skew * 1000)
            c.synced()
            c.last_skew_s = None
            self.log("info", "clock corrected by %d s (the gateway's Date)" % ((self.board.unix_ms() - was) // 1000))

    def _failed(self, reason, retry_at_ms):
        """Count a failed upload; the next one not before retry_at_ms (the agent's backoff)."""
        self.upload_failures += 1
        if retry_at_ms is not None:
            self.not_before = retry_at_ms
            if retry_at_ms > self.next_upload:
                self.next_upload = retry_at_ms
        self._save()  # the backoff outlives a reset in always-on mode too
        self.log("warning", "upload failed (%s); next in %d s" % (
            reason, (self.next_upload - self.board.unix_ms()) // 1000))

    # -- the loop ----------------------------------------------------------------------------------

    def wait(self, ms):
        """Idle until the next due time, in slices the watchdog can bear; spool flush timers run."""
        if self.cfg.mode == "deep-sleep":
            self.sleep(ms)
            return
        slice_ms = self.cfg.watchdog_ms // 2 if self.cfg.watchdog_ms else ms
        while ms > 0:
            part = min(ms, slice_ms, 1000)
            self.board.sleep_ms(part)
            ms -= part
            self.readings.tick()
            self._progress()  # waiting for the schedule is the loop doing its job

    def sleep(self, ms):
        """Deep sleep: everything on flash, the schedule in RTC memory, then the board sleeps.

        A wake that reaches its planned sleep did its job: it counts as healthy even when no upload
        was due, or a node sampling more often than it uploads would be taken for a crash loop.
        """
        self.close()
        self._save()
        if not self.healthy:
            power.mark_healthy(self.board)
            self.healthy = True
        self.board.deepsleep(max(ms, 1))

    def close(self):
        self.readings.close()
        self.events.close()
        if self.agent is not None:
            self.agent.close()

    def run(self):
        while True:
            self.wait(self.step())


def _next(due, now, period):
    """The next due time after now on the period's grid from due (skipping missed slots)."""
    due += period
    if due <= now:
        due = now + period - (now - due) % period
    return due


def _loaded(names, fn, *args):
    """fn(*args) with the agent's on-demand modules mindconnect.<names> imported first, then unloaded.

    The agent imports them itself when it needs them, in the middle of a request, where their code lands
    in the free top of the heap that the answer and its parsing need next (the first token answer and
    the data model's PUT set the app's smallest heap). Imported here, after a collection, it takes the
    lowest free room instead.
    """
    from mindconnect.compat import unload
    for n in names:
        __import__("mindconnect." + n)
    gc.collect()
    try:
        return fn(*args)
    finally:
        unload(*names)


def _mkdir(path):
    import os
    try:
        os.mkdir(path)
    except OSError:
        pass  # already there


def main(board, cfg):
    app = App(board, cfg)
    app.log("info", "node started: %d sensors, sample every %d s, upload every %d s, %s" % (
        len(app.sensors), cfg.sample_s, cfg.upload_s, cfg.mode))
    try:
        app.run()
    finally:
        app.close()
