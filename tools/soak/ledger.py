"""What the node took and what the hub got, counted apart from the node's own claims.

"Taken": every instant a sensor was read (the node's board reports reads as they happen, see node.py)
in a wake cycle that ran to its deep sleep; a reading of a cycle a power cut interrupted may legally be
lost (it may not have reached flash yet) and is counted apart. "Delivered": the hub's store, keyed by
data point and timestamp, with values checked against the simulated sensors' deterministic signals.
The spool's drop counter (reported at each deep sleep) is what the overflow is held against.
"""

import bisect
import datetime
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT / "lib") not in sys.path:  # firmware.boards.sim (the signals) imports mindconnect
    sys.path.insert(0, str(ROOT / "lib"))
from firmware.boards.sim import Signals  # noqa: E402
from tools.soak.timeline import DAY_MS  # noqa: E402

VALUE_TOLERANCE = 1e-6  # the node rounds on the same double-precision formulas; allow for libm


def iso(ms):
    return datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


def parse_ts(text):
    d = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return int(d.timestamp()) * 1000 + d.microsecond // 1000


class Ledger:
    def __init__(self, timeline, points_of, upload_ms):
        self.tl = timeline
        self.points_of = points_of  # firmware version -> [(point id, quantity, seed)]
        self.upload_ms = upload_ms
        self.taken = {}  # instant -> firmware version (cycles that reached their deep sleep)
        self.interrupted = {}  # instant -> firmware version (cycles a power cut or update cut short)
        self.resampled = 0  # an instant read again in a later cycle (same timestamp twice)
        self._cycle = []
        self.firmware = 1
        self.cycles = 0
        self.power_ons = 0
        self.dropped = 0
        self.drops = []  # (simulated ms of a wake cycle, records the spool dropped since the one before)
        self._dropped_seen = 0  # the spool's drop count at the last deep sleep
        self.heap_max = 0
        self.heap_growth = 0  # largest rise of the heap live at deep sleep within one power-on, from its
        # first cycle with the agent loaded (before it, a wake without Wi-Fi has not imported the agent yet)
        self._heap_first = None

    # -- fed by the runner ------------------------------------------------------------------------

    def power_on(self, firmware):
        self.firmware = firmware
        self.power_ons += 1
        self._cycle = []
        self._heap_first = None

    def sampled(self, instant):
        self._cycle.append(instant)

    def cycle_done(self, live_heap, dropped, now, agent_loaded=True):
        """A wake cycle reached its deep sleep at `now`; dropped is the spool's count (since it was made)."""
        for t in self._cycle:
            if t in self.taken or t in self.interrupted:
                self.resampled += 1
            self.taken[t] = self.firmware
        self._cycle = []
        self.cycles += 1
        new = dropped - self._dropped_seen  # the spool's count is kept on flash: it survives power cuts
        self._dropped_seen = dropped
        if new > 0:
            self.dropped += new
            self.drops.append((now, new))
        self.heap_max = max(self.heap_max, live_heap)
        if agent_loaded:
            if self._heap_first is None:
                self._heap_first = live_heap
            self.heap_growth = max(self.heap_growth, live_heap - self._heap_first)

    def power_off(self):
        for t in self._cycle:
            self.interrupted.setdefault(t, self.firmware)
        self._cycle = []

    # -- the reckoning ----------------------------------------------------------------------------

    def reckon(self, rows):
        """rows: (timestamp text, data point, value text, delivered at s) of every stored reading."""
        sensor_points = {p for v in (1, 2) for p, _, _ in self.points_of(v)}
        copies = {}  # (instant, point) -> count
        first_at = {}  # instant -> first delivery (simulated ms)
        bad_values = []
        unknown = 0
        signals = Signals()
        free_heap = []
        for ts, point, value, at in rows:
            if point == "node_free_heap":
                free_heap.append(int(value))
            if point not in sensor_points:
                continue
            t = parse_ts(ts)
            copies[(t, point)] = copies.get((t, point), 0) + 1
            if at is not None:
                first_at[t] = min(first_at.get(t, at * 1000), at * 1000)
            fw = self.taken.get(t, self.interrupted.get(t))
            if fw is None:
                unknown += 1
                continue
            for p, quantity, seed in self.points_of(fw):
                if p == point and abs(float(value) - signals.value(quantity, t, seed)) > VALUE_TOLERANCE:
                    bad_values.append((ts, point, value))
        newest = max((t for t, _ in copies), default=0)

        def delivered(t, fw):
            return all((t, p) in copies for p, _, _ in self.points_of(fw))

        week = self.tl.week
        # A full spool drops its oldest records (counted). A drop in a wake cycle at `d` can only take
        # readings still queued then: taken after the newest one delivered before d, and before d (on
        # the board's clock, which may run fast). The week-long outage is meant to overflow; failed
        # uploads that add up to more than the spool holds (bursts, outages, cuts) can overflow too.
        by_delivery = sorted((at, t) for t, at in first_at.items())
        delivered_at = [at for at, _ in by_delivery]
        newest_so_far = []
        m = 0
        for _, t in by_delivery:
            m = max(m, t)
            newest_so_far.append(m)
        windows = []
        for d, _ in self.drops:
            i = bisect.bisect_left(delivered_at, d)
            windows.append((newest_so_far[i - 1] if i else 0, d + self.tl.clock_error_at(d)))

        def dropped_by_spool(t):
            return any(a < t <= b for a, b in windows)

        lost, overflow_lost, queued, incomplete = [], [], [], 0
        for t, fw in self.taken.items():
            if delivered(t, fw):
                continue
            if any((t, p) in copies for p, _, _ in self.points_of(fw)):
                incomplete += 1  # part of a reading: never expected
            if t > newest:
                queued.append(t)
            elif dropped_by_spool(t):
                overflow_lost.append(t)
            else:
                lost.append(t)
        in_week = [d for d, _ in self.drops if week.start <= d < week.end + DAY_MS]
        cut_lost = sum(1 for t, fw in self.interrupted.items() if t not in self.taken and not delivered(t, fw))
        twice = sum(1 for (t, p), n in copies.items() if p == "t" and n > 1)
        latency, worst = 0, None
        for t, fw in self.taken.items():
            o = self.tl.outage_at(t)
            if o is not None and t in first_at and delivered(t, fw) and first_at[t] - o.end > latency:
                latency, worst = first_at[t] - o.end, o
        stamps = sorted(self.taken)
        gap = max((b - a for a, b in zip(stamps, stamps[1:])), default=0)
        return {
            "taken": len(self.taken), "interrupted": len(self.interrupted), "cut_lost": cut_lost,
            "delivered": sum(1 for t, fw in self.taken.items() if delivered(t, fw)),
            "delivered_twice": twice, "lost": len(lost), "lost_stamps": sorted(lost)[:10],
            "overflow_lost": len(overflow_lost), "week_overflowed": bool(in_week),
            "drop_cycles": len(self.drops), "drop_cycles_outside_week": len(self.drops) - len(in_week),
            "dropped_counted": self.dropped, "queued_at_end": len(queued),
            "incomplete": incomplete, "unknown": unknown, "bad_values": len(bad_values),
            "bad_value_examples": bad_values[:5], "resampled": self.resampled,
            "worst_delivery_after_outage_ms": int(latency),
            "worst_outage": None if worst is None else "%s outage of %.1f h from %s" % (
                worst.kind if not worst.week else "week-long", (worst.end - worst.start) / 3600000,
                iso(worst.start)), "worst_sampling_gap_ms": gap,
            "cycles": self.cycles, "power_ons": self.power_ons, "live_heap_max": self.heap_max,
            "live_heap_growth": self.heap_growth, "min_free_heap": min(free_heap, default=None),
        }
