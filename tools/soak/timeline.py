"""The soak's scenario: what happens to the node and when, drawn once from a seed.

All times are simulated Unix milliseconds. The same seed gives the same timeline; only the exact
instruction a power cut lands on varies (it is a real-time moment in the node's work, see runner.py).
"""

import bisect
import random

T0 = 1767225600000  # 2026-01-01T00:00:00Z
MINUTE_MS = 60000
HOUR_MS = 3600000
DAY_MS = 86400000
WEEK_MS = 7 * DAY_MS
CLOCK_ERROR_MS = 2 * HOUR_MS  # how far ahead the board's clock runs before it is set right
CLOCK_ERROR_SPAN_MS = 6 * HOUR_MS
MIN_DAYS = 14  # the week-long outage starts on day 30% (+ up to a day) and lasts 7 days
QUIET_MS = 6 * HOUR_MS  # the end of the run is free of faults, so the node can drain its spool


class Scenario:
    """The knobs of one run; the defaults are the issue's year."""

    def __init__(self, days=365, cuts=1000, seed=1, sample_s=600, upload_s=3600, secret_lifetime_s=7 * 86400,
                 token_lifetime_s=3600, spool_bytes=65536, log_level="info"):
        if days < MIN_DAYS:
            raise ValueError("a soak needs at least %d days: the week-long outage (from day 30%%) must end, and "
                             "the node catch up, before the run does (got %d)" % (MIN_DAYS, days))
        self.days = days
        self.cuts = cuts
        self.seed = seed
        self.sample_s = sample_s
        self.upload_s = upload_s
        self.secret_lifetime_s = secret_lifetime_s
        self.token_lifetime_s = token_lifetime_s
        self.spool_bytes = spool_bytes
        self.log_level = log_level  # of the node's log (work dir/node.log); "debug" logs every reading

    def describe(self):
        return ("%d days, %d power cuts, seed %d, sample every %d s, upload every %d s, secret lifetime %d s, "
                "token lifetime %d s, spool %d bytes" % (
                    self.days, self.cuts, self.seed, self.sample_s, self.upload_s, self.secret_lifetime_s,
                    self.token_lifetime_s, self.spool_bytes))


class Outage:
    """No way to the hub from start to end: 'wifi' (the access point is gone) or 'network' (the hub
    drops every connection right after the TLS handshake)."""

    def __init__(self, start, end, kind, week=False):
        self.start, self.end, self.kind, self.week = start, end, kind, week

    def covers(self, t):
        return self.start <= t < self.end


class Burst:
    """From `at`, the next `count` requests to `endpoint` are answered with `status` (+ Retry-After)."""

    def __init__(self, at, status, count, retry_after, endpoint):
        self.at, self.status, self.count, self.retry_after, self.endpoint = at, status, count, retry_after, endpoint


class Timeline:
    def __init__(self, scenario, start=T0):
        sc = scenario
        rnd = random.Random(sc.seed)
        self.start = start
        self.end = start + sc.days * DAY_MS
        busy_end = self.quiet_from = self.end - QUIET_MS
        week_day = max(1, int(sc.days * 0.3))
        ws = start + week_day * DAY_MS + rnd.randrange(DAY_MS)
        self.week = Outage(ws, ws + WEEK_MS, "network", week=True)
        self.outages = [self.week]
        for day in range(sc.days):
            s = start + day * DAY_MS + rnd.randrange(DAY_MS)
            e = s + rnd.randint(HOUR_MS, 6 * HOUR_MS)
            kind = rnd.choice(("wifi", "network"))
            if e <= busy_end and not (s < self.week.end + DAY_MS and e > self.week.start - DAY_MS):
                self.outages.append(Outage(s, e, kind))
        self.outages.sort(key=lambda o: o.start)
        self._starts = [o.start for o in self.outages]
        self.bursts = []
        t = start + DAY_MS // 2
        while True:
            t += rnd.randrange(DAY_MS, 4 * DAY_MS)
            if t >= busy_end:
                break
            if rnd.random() < 0.5:
                self.bursts.append(Burst(t, 429, rnd.randint(1, 4), rnd.choice((30, 120, 600, 1800)), "exchange"))
            else:
                self.bursts.append(Burst(t, 503, rnd.randint(1, 4), rnd.choice((None, 60)),
                                         rnd.choice(("exchange", "exchange", "token"))))
        self.firmware_at = start + int(sc.days * 0.6) * DAY_MS + rnd.randrange(DAY_MS)
        ce = start + int(sc.days * 0.8) * DAY_MS + rnd.randrange(DAY_MS)
        self.clock_error = (ce, ce + CLOCK_ERROR_SPAN_MS, CLOCK_ERROR_MS)
        self.cuts = sorted(rnd.randrange(start + HOUR_MS, busy_end) for _ in range(sc.cuts))
        self.rnd = rnd  # later draws (cut delays, time off) continue from the same seed

    def outage_at(self, t):
        i = bisect.bisect_right(self._starts, t) - 1
        return self.outages[i] if i >= 0 and self.outages[i].covers(t) else None

    def clock_error_at(self, t):
        s, e, err = self.clock_error
        return err if s <= t < e else 0
