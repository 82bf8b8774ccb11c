# The soak's ledger on its own (no node, no hub): a reading the full spool dropped while it was queued is
# an overflow loss; a reading missing with no drop to explain it is a loss, whatever else happened.
from firmware.boards.sim import Signals
from tools.soak.ledger import Ledger, iso
from tools.soak.timeline import DAY_MS, HOUR_MS, MINUTE_MS, Scenario, Timeline

POINTS = [("t", "temperature", 0)]


def _row(t, at_ms):
    stamp = iso(t).replace(" ", "T") + ":%02d.%03dZ" % (t // 1000 % 60, t % 1000)
    return stamp, "t", repr(Signals().value("temperature", t, 0)), at_ms / 1000


def _ledger():
    tl = Timeline(Scenario(days=30, cuts=0, seed=7, sample_s=1800, upload_s=10800, spool_bytes=16384))
    assert tl.week.start > tl.start + 3 * DAY_MS and tl.clock_error[0] > tl.start + 3 * DAY_MS
    return Ledger(tl, lambda fw: POINTS, 3 * HOUR_MS), tl.start + DAY_MS


def _cycle(ledger, t, dropped_total):
    ledger.sampled(t)
    ledger.cycle_done(1000, dropped_total, t + MINUTE_MS)


def test_only_a_drop_while_the_reading_was_queued_excuses_it():
    ledger, t0 = _ledger()
    ledger.power_on(1)
    step = 30 * MINUTE_MS
    stamps = [t0 + i * step for i in range(8)]
    _cycle(ledger, stamps[0], 0)
    _cycle(ledger, stamps[1], 0)  # 0 and 1 delivered before the drop
    _cycle(ledger, stamps[2], 0)
    _cycle(ledger, stamps[3], 2)  # the spool dropped 2 records in this cycle: 2 and 3 were queued
    _cycle(ledger, stamps[4], 2)  # delivered
    _cycle(ledger, stamps[5], 2)  # never delivered, no drop after it: lost
    _cycle(ledger, stamps[6], 2)  # delivered
    _cycle(ledger, stamps[7], 2)  # still queued at the end
    rows = [_row(stamps[0], stamps[1] + MINUTE_MS), _row(stamps[1], stamps[1] + MINUTE_MS),
            _row(stamps[4], stamps[4] + MINUTE_MS), _row(stamps[6], stamps[6] + MINUTE_MS)]
    r = ledger.reckon(rows)
    assert (r["taken"], r["delivered"], r["overflow_lost"], r["lost"], r["queued_at_end"]) == (8, 4, 2, 1, 1)
    assert r["lost_stamps"] == [stamps[5]]
    assert (r["dropped_counted"], r["drop_cycles"], r["week_overflowed"]) == (2, 1, False)


def test_the_drop_count_is_taken_as_the_spools_running_total():
    # the spool keeps its count on flash: after a power cut the next deep sleep reports the total,
    # and only the increase is a new drop
    ledger, t0 = _ledger()
    ledger.power_on(1)
    _cycle(ledger, t0, 3)
    ledger.power_off()
    ledger.power_on(1)
    _cycle(ledger, t0 + HOUR_MS, 3)
    _cycle(ledger, t0 + 2 * HOUR_MS, 5)
    r = ledger.reckon([])
    assert (r["dropped_counted"], r["drop_cycles"]) == (5, 2)
