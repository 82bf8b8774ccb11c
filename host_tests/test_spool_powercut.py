# Power cuts: MicroPython processes appending and acknowledging are SIGKILLed at random moments, some
# folders are damaged on purpose, then every folder is reopened and drained (tools/bench/spool_bench.py).
import os

import mpyharness

from tools.bench import spool_bench

TRIALS = 500
SEED = 8


def _runners(workdir):
    extra = [workdir / "mpy"]

    def start(args, **kw):
        return mpyharness.popen(args, extra_paths=extra, **kw)

    def run(args):
        return mpyharness.run(args, extra_paths=extra, timeout=300)

    return start, run


def test_every_flushed_reading_survives_random_power_cuts(mpy, tmp_path):
    start, run = _runners(tmp_path)
    trials = spool_bench.power_cut_trials(TRIALS, SEED, tmp_path, start, run)
    failed = [(t.index, t.seed, t.every, t.ms, t.damage, t.problems, t.result) for t in trials if t.problems]
    assert not failed, "%d of %d trials failed, first ones: %s" % (len(failed), len(trials), failed[:3])
    s = spool_bench.summary(trials)
    # the trials covered what they claim: kills with a batch in flight, cut records, spoilt cursors
    assert s["killed_with_batch_in_flight"] >= 50, s
    assert s["cut"] >= 25 and s["cursor_damaged"] >= 25, s
    assert s["torn_expected"] == s["cut"] + s["natural_torn"], s
    assert s["finished_before_kill"] < TRIALS // 10, s
    assert s["readings_flushed"] >= 5 * TRIALS, s


def test_oracle_reads_the_documented_format():
    # The host's reading of the format agrees with what spool.py writes, and a cut record is not clean.
    import sys
    import tempfile
    sys.path.insert(0, str(spool_bench.ROOT / "lib"))
    from mindconnect.spool import Spool
    with tempfile.TemporaryDirectory() as d:
        sp = Spool(d + "/s", max_bytes=8192, segment_bytes=1024)
        for i in range(3):
            sp.append(b'{"values":[{"value":"%d"}]}' % i)
        sp.close()
        data = open(os.path.join(d, "s", "1"), "rb").read()
    recs, clean = spool_bench.parse_segment(data)
    assert clean and [n for _, n in recs] == [0, 1, 2]
    recs, clean = spool_bench.parse_segment(data[:-1])
    assert not clean and [n for _, n in recs] == [0, 1]
    flipped = bytearray(data)
    flipped[10] ^= 1
    assert spool_bench.parse_segment(bytes(flipped)) == ([], False)
