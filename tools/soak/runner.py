"""The soak runner: the real app under MicroPython against the mock hub, through simulated time.

The runner owns "now". The mock hub reads it through its injected clock, the node receives it over
the link (tools/soak/node.py) and can only move it by sleeping: a deep sleep ends a wake cycle, the
runner applies what the timeline says happens meanwhile (outages, 429/503 bursts, a wrong board clock,
a firmware change) and wakes the node at now + the sleep. Power cuts are SIGKILLs at random moments
of the node's real work; the flash folder is kept and a new process is a power-on.
"""

import json
import shutil
import threading
import time
from pathlib import Path

from tools.mockhub import MockHub
from tools.soak import spooldump
from tools.soak import timeline as tl
from tools.soak.ledger import Ledger
from tools.soak.link import NodeProcess, compile_node

MAX_OFF_MS = 5 * tl.MINUTE_MS  # how long the board stays dark after a power cut (drawn up to this)
CUT_WINDOW_CYCLES = 6  # a cut lands within this many average wake cycles of real time after it is due


def node_config(scenario, firmware=1):
    """config.json of the node; firmware 2 adds a sensor (a new data model, one more mapping)."""
    sensors = [{"type": "sim", "name": "room", "points": [
        {"id": "t", "name": "Temperature", "unit": "°C"},
        {"id": "rh", "name": "Humidity", "quantity": "humidity", "unit": "%"},
        {"id": "p", "name": "Pressure", "quantity": "pressure", "unit": "Pa"}]}]
    mappings = [{"point": "t", "entity_id": None, "property_set": "room", "property": "temperature"}]
    if firmware >= 2:
        sensors.append({"type": "sim", "name": "battery", "seed": 1, "points": [
            {"id": "vbat", "name": "Battery", "quantity": "voltage", "unit": "V"}]})
        mappings.append({"point": "vbat", "entity_id": None, "property_set": "power", "property": "battery"})
    return {"board": "sim", "safe_pin": None, "mode": "deep-sleep", "log_level": scenario.log_level,
            "sample_s": scenario.sample_s, "upload_s": scenario.upload_s, "wifi": {"ssid": "soak-ap"},
            "spool": {"max_bytes": scenario.spool_bytes}, "sensors": sensors, "mappings": mappings}


def sensor_points(firmware):
    """(point id, quantity, sensor seed) of every sensor point the firmware version samples."""
    pts = [("t", "temperature", 0), ("rh", "humidity", 0), ("p", "pressure", 0)]
    if firmware >= 2:
        pts.append(("vbat", "voltage", 1))
    return pts


class SoakError(Exception):
    """The node did something a healthy node never does (crashed, entered safe mode)."""


class Soak:
    def __init__(self, scenario, work_dir, heapsize, say=None, trace_spool=False):
        self.sc = scenario
        self.tl = tl.Timeline(scenario)
        self.dir = Path(work_dir)
        self.heapsize = heapsize
        self.say = say or (lambda s: None)
        self.trace_spool = trace_spool
        self.now = self.tl.start
        self.firmware = 1
        self.ledger = Ledger(self.tl, sensor_points, scenario.upload_s * 1000)
        self.node = None
        self.cuts_done = 0
        self.crashes = []
        self.next_cut = 0
        self._armed = None  # the timer of the power cut in progress
        self._cut_fired = False
        self._killed = False
        self._cycle_s = 0.05  # running average of a wake cycle's real duration
        self._cycle_start = None
        self._burst = 0
        self._burst_faults = []  # injected and perhaps not used up yet; removed when the quiet end begins
        self._outage = None
        self._outage_fault = None

    # -- set-up -----------------------------------------------------------------------------------

    def prepare(self):
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.flash = self.dir / "flash"
        self.flash.mkdir(parents=True)
        compile_node()
        self.hub = MockHub(self.dir / "hub", clock=lambda: self.now / 1000).start()
        created = self.hub.create_agent(name="soak", secret_lifetime_s=self.sc.secret_lifetime_s,
                                        token_lifetime_s=self.sc.token_lifetime_s)
        self.client_id = created["client_id"]
        self.hub.store.execute("PRAGMA synchronous=OFF")
        (self.flash / "ca.der").write_bytes(self.hub.ca_der)
        (self.flash / "secrets.json").write_text(json.dumps(
            {"wifi_password": "soak-password", "onboarding_key": created["onboarding_key"]}))
        self._write_config()

    def _write_config(self):
        tmp = self.flash / "config.json.tmp"
        tmp.write_text(json.dumps(node_config(self.sc, self.firmware), indent=1))
        tmp.rename(self.flash / "config.json")

    # -- the run ----------------------------------------------------------------------------------

    def run(self):
        self.prepare()
        started = time.monotonic()
        try:
            self._start_node()
            # past the end, a cut in progress lands and those still due are made (cuts come one per
            # wake cycle, so several due close together before the end can spill over it)
            while self.now < self.tl.end or self._armed is not None or self.next_cut < len(self.tl.cuts):
                self._serve()
        finally:
            self._disarm()
            if self.node is not None:
                self.node.kill()
                self.node.close()
            self.real_s = time.monotonic() - started
        return self

    def close(self):
        self.hub.stop()

    def _start_node(self):
        self._killed = False
        self._cycle_start = None
        self.node = NodeProcess(self.flash, self.heapsize, self.dir / "node.log")
        self.node.note("%d power-on (firmware %d)" % (self.now, self.firmware))
        self._trace("ON")
        self.ledger.power_on(self.firmware)

    def _serve(self):
        """Handle one message from the node."""
        msg = self.node.message()
        if not msg:
            self._ended()
            return
        kind = msg[0]
        if kind == b"R":
            self.ledger.sampled(int(msg[1]))
        elif kind == b"H":
            self._answer()
        elif kind == b"L":
            self._advance(int(msg[1]))
            self._answer()
        elif kind == b"D":
            self._wake_cycle_done(int(msg[1]), int(msg[2]), int(msg[3]), msg[4] == b"1")
        elif kind == b"X":
            raise SoakError("the node left the app (safe mode or a refused config):\n" + self.node.log_tail())
        else:
            raise SoakError("unexpected message from the node: %r" % (msg,))

    def _answer(self):
        outage = self.tl.outage_at(self.now)
        self.node.answer(self.now, not (outage and outage.kind == "wifi"), self.tl.clock_error_at(self.now))

    def _ended(self):
        """The node process is gone: our power cut, or a crash (which a healthy node never has)."""
        self.node.close()
        if not self._killed:
            self.crashes.append(self.node.log_tail())
            self.say("node process ended on its own at %s:\n%s" % (self.now, self.node.log_tail()))
            if len(self.crashes) > 3:
                raise SoakError("the node keeps crashing:\n" + self.crashes[-1])
        self.ledger.power_off()
        self._disarm()
        self.now += self.tl.rnd.randrange(1000, MAX_OFF_MS)
        self._start_node()

    def _advance(self, ms):
        self.now += ms
        self._apply_faults()

    def _trace(self, what):
        """With trace_spool, the readings spool as it is on flash, into node.log (after each wake cycle
        and at each power-on), so a reading that went missing can be followed record by record."""
        if self.trace_spool:
            self.node.note("%d %s %s" % (self.now, what, spooldump.dump(str(self.flash / "spool" / "ts"))))

    def _wake_cycle_done(self, sleep_ms, live_heap, dropped, agent_loaded):
        self._trace("D")
        self.ledger.cycle_done(live_heap, dropped, self.now, agent_loaded)
        t = time.monotonic()
        if self._cycle_start is not None:
            self._cycle_s = 0.95 * self._cycle_s + 0.05 * (t - self._cycle_start)
        if self.firmware == 1 and self.now >= self.tl.firmware_at:
            self._firmware_update()
            return
        self._advance(sleep_ms)
        self._maybe_cut()
        self._answer()
        self._cycle_start = time.monotonic()

    # -- what the timeline does -------------------------------------------------------------------

    def _apply_faults(self):
        """Hub-side faults for `now`: the outage's dropped connections, bursts that have begun."""
        outage = self.tl.outage_at(self.now)
        if outage is not self._outage:
            if self._outage_fault is not None:
                self.hub.remove_fault(self._outage_fault)
                self._outage_fault = None
            if outage is not None and outage.kind == "network":
                self._outage_fault = self.hub.fault(None, "*", drop_after_request_bytes=0, count=None)
            self._outage = outage
        bursts = self.tl.bursts
        while self._burst < len(bursts) and bursts[self._burst].at <= self.now:
            b = bursts[self._burst]
            self._burst_faults.append(
                self.hub.fault(None, b.endpoint, status=b.status, count=b.count, retry_after=b.retry_after))
            self._burst += 1
        if self.now >= self.tl.quiet_from and self._burst_faults:
            # a burst lasts a number of requests; one begun late would reach into the quiet end, where
            # the node is to drain its spool (with uploads hours apart, 4 requests can span 12 h)
            for f in self._burst_faults:
                self.hub.remove_fault(f)
            self._burst_faults = []

    def _maybe_cut(self):
        """Arm a power cut when one is due: SIGKILL after a random real delay within a few wake cycles,
        so it lands wherever the node happens to be (sampling, uploading, rotating, asleep)."""
        if self._armed is not None or self.next_cut >= len(self.tl.cuts) or self.now < self.tl.cuts[self.next_cut]:
            return
        self.next_cut += 1
        delay = self.tl.rnd.random() * CUT_WINDOW_CYCLES * self._cycle_s
        node = self.node

        def cut():
            self._cut_fired = True
            self._killed = True
            self.cuts_done += 1
            node.kill()
            node.note("%d power cut" % self.now)

        self._cut_fired = False
        self._armed = threading.Timer(delay, cut)
        self._armed.start()

    def _disarm(self):
        """Forget the cut in progress; one that had not landed yet is made later instead."""
        if self._armed is not None:
            self._armed.cancel()
            self._armed.join()
            self._armed = None
            if not self._cut_fired:
                self.next_cut -= 1

    def _firmware_update(self):
        """A new firmware with one more sensor: flashed while the node sleeps, then it boots anew."""
        self._disarm()
        self._killed = True
        self.node.kill()
        self.node.close()
        self.ledger.power_off()
        self.firmware = 2
        self._write_config()
        self.now += tl.MINUTE_MS
        self._apply_faults()
        self._start_node()

    # -- the results ------------------------------------------------------------------------------

    def results(self):
        """The report's figures: the ledger's reckoning against the hub's store, plus the hub's counts."""
        hub, cid = self.hub, self.client_id
        rows = hub.store.query(
            "SELECT t.timestamp, t.datapoint, t.value, e.at FROM timeseries t LEFT JOIN exchanges e "
            "ON e.id = t.exchange_id WHERE t.client_id=?", (cid,))
        out = self.ledger.reckon(rows)
        state = hub.agent_state(cid)
        counters = hub.counters()
        endpoints = counters["endpoints"]
        out.update({
            "rotations": state["rotations"], "reonboardings": endpoints.get("register", 0) - 1,
            "tokens": state["tokens_issued"], "handshakes": counters["handshakes"],
            "requests": counters["requests"], "exchanges": endpoints.get("exchange", 0),
            "dsc_versions": len(hub.dsc_history(cid)), "mappings": len(hub.mappings(cid)),
            "rejected": len(hub.rejected(cid)), "dropped_by_hub": len(hub.dropped(cid)),
            "cuts": self.cuts_done, "crashes": len(self.crashes), "outages": len(self.tl.outages),
            "bursts": self._burst, "real_s": round(self.real_s, 1), "heapsize": self.heapsize,
        })
        return out
