"""The spool under power cuts, and what each flush policy costs in flash writes.

Power-cut trials: a MicroPython process (WORKER) appends numbered readings to a fresh spool folder and
drains/acknowledges batches at random, printing its progress:

    F n      readings 0..n are flushed (on flash)
    B a b    a batch holding a..b was read (contiguous, valid JSON, exact length)
    K b      the batch ending at b was acknowledged (its cursor is on flash)

The host SIGKILLs it after a random number of progress lines, sometimes damages the folder on purpose
(cuts the last record in half, or corrupts/deletes the cursor), then a VERIFIER process reopens many
folders in turn, appends a marker reading and drains each. The host checks every trial against what the
worker had printed and against its own reading of the on-flash format (parse_folder): every flushed
reading comes back, in order, with repeats only from the one batch in flight (or, after cursor damage,
from the start of the oldest segment), the marker comes last, the torn count is what the files show, and
reopening never raises.

run(out_dir) is the benchmark section: flash writes and bytes per reading for each flush policy, and a
longer power-cut run.
"""

import os
import random
import selectors
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SEGMENT_BYTES = 1024
MAX_BYTES = 256 * 1024
BUF_BYTES = 256
MARKER = 999999
HEADER = 6

WORKER = '''
import random
import sys

from mindconnect.spool import Spool


def record(i, pad):
    r = b'{"timestamp":"2026-11-25T06:02:51.272Z","values":[{"dataPointId":"t","value":"%d","qualityCode":"0"}]' % i
    if pad:
        r += b',"pad":"' + b"p" * 300 + b'"'
    return r + b"}"


def main():
    path, seed, every, ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    random.seed(seed)
    sp = Spool(path, max_bytes=@MAX_BYTES@, segment_bytes=@SEGMENT_BYTES@, flush_every=every or None,
               flush_ms=ms or None, buf_bytes=@BUF_BYTES@)
    out = bytearray()
    i = 0
    while i < 20000:
        r = random.getrandbits(4)
        if r < 11:
            sp.append(record(i, random.getrandbits(4) == 0))
            i += 1
            if not sp.unflushed:
                print("F", i - 1)
        elif r < 15:
            b = sp.batch(200 + random.getrandbits(10))
            if i:
                print("F", i - 1)
            if b is None:
                continue
            out[:] = b""
            b.write_to(out.extend)
            vals = [int(x["values"][0]["value"]) for x in __import__("json").loads(out)]
            if len(out) != b.length or len(vals) != b.count or vals != list(range(vals[0], vals[0] + b.count)):
                print("ERR batch", b.length, len(out), b.count, vals)
                sys.exit(1)
            print("B", vals[0], vals[-1])
            if random.getrandbits(2):
                sp.ack(b)
                print("K", vals[-1])
        else:
            sp.tick()
            if i and not sp.unflushed:
                print("F", i - 1)
    print("END")


main()
'''

VERIFIER = '''
import sys

from mindconnect.spool import Spool


def check(path):
    sp = Spool(path, max_bytes=@MAX_BYTES@, segment_bytes=@SEGMENT_BYTES@, buf_bytes=@BUF_BYTES@)
    sp.append(b'{"timestamp":"2026-11-25T06:02:51.272Z","values":[{"dataPointId":"t","value":"@MARKER@","qualityCode":"0"}]}')
    pending = sp.pending()
    out = bytearray()
    runs = []
    total = 0
    while True:
        b = sp.batch(4096)
        if b is None:
            break
        out[:] = b""
        b.write_to(out.extend)
        for x in __import__("json").loads(out):
            v = int(x["values"][0]["value"])
            if runs and runs[-1][1] + 1 == v:
                runs[-1][1] = v
            else:
                runs.append([v, v])
        total += b.count
        sp.ack(b)
    if sp.batch(4096) is not None or sp.pending():
        raise RuntimeError("spool not empty after draining")
    sp.close()
    return "%d %d %d %s" % (sp.torn, pending, total, " ".join("%d-%d" % (a, b) for a, b in runs))


for i, path in enumerate(sys.argv[1:]):
    try:
        print("V", i, check(path))
    except Exception as e:
        print("X", i, type(e).__name__, e)
'''




def _fill(template):
    return (template.replace("@MAX_BYTES@", str(MAX_BYTES)).replace("@SEGMENT_BYTES@", str(SEGMENT_BYTES))
            .replace("@BUF_BYTES@", str(BUF_BYTES)).replace("@MARKER@", str(MARKER)))


# ----- the host's own reading of the on-flash format (docs/SPOOL.md), independent of spool.py

def parse_segment(data):
    """[(offset, reading number)] of the valid records, and whether the segment ends cleanly."""
    out = []
    off = 0
    while off < len(data):
        if off + HEADER > len(data):
            return out, False
        n, crc = struct.unpack_from("<HI", data, off)
        body = data[off + HEADER:off + HEADER + n]
        if n == 0 or len(body) != n or zlib.crc32(body, zlib.crc32(data[off:off + 2])) != crc:
            return out, False
        value = body.split(b'"value":"', 1)[1].split(b'"', 1)[0]
        out.append((off, int(value)))
        off += HEADER + n
    return out, True


def parse_folder(path):
    """{segment number: (records, clean, size)} for every segment file."""
    segs = {}
    for name in os.listdir(path):
        if name.isdigit():
            data = (Path(path) / name).read_bytes()
            recs, clean = parse_segment(data)
            segs[int(name)] = (recs, clean, len(data))
    return segs


# ----- one trial

class Trial:
    def __init__(self, index, path, seed, every, ms):
        self.index = index
        self.path = path
        self.seed = seed
        self.every = every
        self.ms = ms
        self.flushed = -1
        self.acked = -1
        self.inflight = None  # (a, b) read and not known to be acknowledged
        self.finished = False
        self.damage = None
        self.lost = None  # the reading destroyed by a deliberate cut
        self.expect_torn = 0
        self.oldest_first = None
        self.last_on_flash = -1
        self.problems = []
        self.result = None

    def args(self):
        return [self.path, str(self.seed), str(self.every), str(self.ms)]

    def progress(self, line):
        parts = line.split()
        if not parts:
            return
        if parts[0] == "F":
            self.flushed = max(self.flushed, int(parts[1]))
        elif parts[0] == "B":
            self.inflight = (int(parts[1]), int(parts[2]))
        elif parts[0] == "K":
            self.acked = int(parts[1])
            self.inflight = None
        elif parts[0] == "END":
            self.finished = True
        else:
            self.problems.append("worker: " + line)


def _read_lines(proc, want, deadline_s):
    """Progress lines of a running worker until `want` of them were read; the rest stays in the pipe."""
    lines = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    pending = b""
    end = time.monotonic() + deadline_s
    try:
        while len(lines) < want and time.monotonic() < end:
            if not sel.select(timeout=max(0.0, end - time.monotonic())):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                lines.append(line.decode())
    finally:
        sel.close()
    return lines, pending


def run_worker(trial, start, rng):
    """Start the worker, SIGKILL it after a random number of progress lines, record what it printed."""
    proc = start(["-m", "spool_worker"] + trial.args(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines, pending = _read_lines(proc, rng.randint(1, 80), 30)
        proc.kill()
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    pending += rest
    lines += pending.decode().split("\n")[:-1]  # a line cut by the kill has no newline: not counted
    for line in lines:
        trial.progress(line)
    if proc.returncode not in (0, -9) or (proc.returncode == 0 and not trial.finished):
        trial.problems.append("worker exited %s: %s" % (proc.returncode, err.decode()[-2000:]))


def damage(trial, rng):
    """Sometimes cut the last record in half or spoil the cursor, the way a bad power cut or bit rot would."""
    segs = parse_folder(trial.path)
    roll = rng.random()
    done = max(trial.acked, trial.inflight[1] if trial.inflight else -1)
    if roll < 0.15 and segs:
        last = max(segs)
        recs, clean, size = segs[last]
        if clean and recs and recs[-1][1] > done:
            off, number = recs[-1]
            cut = off + rng.randint(1, size - off - 1)
            with open(os.path.join(trial.path, str(last)), "r+b") as f:
                f.truncate(cut)
            trial.damage = "cut"
            trial.lost = number
    elif roll < 0.30:
        cur = os.path.join(trial.path, "cur")
        if rng.random() < 0.5:
            if os.path.exists(cur):
                os.remove(cur)
            trial.damage = "no cursor"
        else:
            with open(cur, "wb") as f:
                f.write(bytes(rng.getrandbits(8) for _ in range(12)))
            trial.damage = "bad cursor"


def expect(trial):
    """What the files on flash say the verifier must see."""
    segs = parse_folder(trial.path)
    if segs:
        last = max(segs)
        trial.expect_torn = 0 if segs[last][1] else 1
        for n in sorted(segs):
            if segs[n][0]:
                trial.oldest_first = segs[n][0][0][1]
                break
        for n in sorted(segs, reverse=True):
            if segs[n][0]:
                trial.last_on_flash = segs[n][0][-1][1]
                break


def check(trial, line):
    """Compare the verifier's line for this trial with what must be true; problems go to trial.problems."""
    p = trial.problems
    trial.result = line
    if line.startswith("X"):
        p.append("reopen raised: " + line)
        return
    fields = line.split()
    torn, pending, total = int(fields[2]), int(fields[3]), int(fields[4])
    runs = [tuple(int(x) for x in r.split("-")) for r in fields[5:]]
    if not runs or runs[-1] != (MARKER, MARKER):
        p.append("the marker appended on reopen was not delivered last: %s" % runs)
        return
    runs = runs[:-1]
    if len(runs) > 1:
        p.append("readings out of order or skipped: %s" % runs)
        return
    if torn != trial.expect_torn:
        p.append("torn %d, expected %d" % (torn, trial.expect_torn))
    if trial.expect_torn == 0 and pending != total:
        p.append("pending() said %d, %d delivered" % (pending, total))
    done = max(trial.acked, trial.inflight[1] if trial.inflight else -1)
    if not runs:
        must = trial.lost - 1 if trial.damage == "cut" else max(trial.flushed, trial.last_on_flash)
        if must > done:
            p.append("nothing delivered, but %d was on flash and only %d acknowledged" % (must, done))
        return
    first, last = runs[0]
    if trial.damage in ("no cursor", "bad cursor"):
        if first != trial.oldest_first:
            p.append("after cursor damage, started at %d, not at the oldest segment's %d"
                     % (first, trial.oldest_first))
    else:
        allowed = {trial.acked + 1}
        if trial.inflight:
            allowed.add(trial.inflight[1] + 1)
        if first not in allowed:
            p.append("started at %d; acked up to %d, in flight %s" % (first, trial.acked, trial.inflight))
    if trial.damage == "cut":
        if last != trial.lost - 1:
            p.append("after cutting reading %d, delivery ended at %d" % (trial.lost, last))
    elif last < trial.flushed or last != trial.last_on_flash:
        p.append("delivery ended at %d; flushed %d, last on flash %d" % (last, trial.flushed, trial.last_on_flash))


def compile_scripts(out_dir):
    """WORKER and VERIFIER as .mpy modules spool_worker and spool_verify in out_dir."""
    sys.path.insert(0, str(ROOT))
    from tools import build
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = []
    for name, src in (("spool_worker", _fill(WORKER)), ("spool_verify", _fill(VERIFIER))):
        path = out_dir / (name + ".py")
        if not path.exists() or path.read_text() != src:
            path.write_text(src)
        pairs.append((path, Path(name + ".py")))
    errors = build.compile_files(pairs, out_dir)
    if errors:
        raise RuntimeError("\n".join(errors))


POLICIES = ((1, 0), (1, 0), (3, 0), (8, 0), (0, 2))  # (flush_every, flush_ms); 0 = off


def power_cut_trials(n, seed, workdir, start, run, group=100):
    """Run n trials; start(args, **popen_kw) -> Popen and run(args) -> CompletedProcess run micropython
    with workdir/mpy on its module path. Returns the trials (each with .problems)."""
    rng = random.Random(seed)
    compile_scripts(Path(workdir) / "mpy")
    trials = []
    for k in range(n):
        every, ms = POLICIES[k % len(POLICIES)]
        t = Trial(k, os.path.join(str(workdir), "t%d" % k), rng.getrandbits(30), every, ms)
        run_worker(t, start, rng)
        damage(t, rng)
        expect(t)
        trials.append(t)
    for i in range(0, n, group):
        chunk = trials[i:i + group]
        proc = run(["-m", "spool_verify"] + [t.path for t in chunk])
        seen = {}
        for line in proc.stdout.splitlines():
            if line[:1] in ("V", "X"):
                seen[int(line.split()[1])] = line
        for j, t in enumerate(chunk):
            if j in seen:
                check(t, seen[j])
            else:
                t.problems.append("verifier gave no result (exit %d): %s" % (proc.returncode, proc.stderr[-2000:]))
    return trials


def summary(trials):
    """Counts a report (or a test) can show: how the trials ended and what they covered."""
    s = {"trials": len(trials), "failed": sum(1 for t in trials if t.problems),
         "killed_with_batch_in_flight": sum(1 for t in trials if t.inflight),
         "cut": sum(1 for t in trials if t.damage == "cut"),
         "cursor_damaged": sum(1 for t in trials if t.damage in ("no cursor", "bad cursor")),
         "torn_expected": sum(t.expect_torn for t in trials),
         "natural_torn": sum(t.expect_torn for t in trials if t.damage != "cut"),
         "finished_before_kill": sum(1 for t in trials if t.finished),
         "readings_flushed": sum(t.flushed + 1 for t in trials)}
    return s


# ----- flash writes per reading for each flush policy (CPython, the same spool.py)

def flash_cost(policy, readings=10000, gap_ms=100):
    """Append `readings` readings `gap_ms` apart under a flush policy; writes and bytes per reading."""
    import shutil
    import tempfile
    sys.path.insert(0, str(ROOT / "lib"))
    from mindconnect.spool import Spool
    now = [0]
    folder = tempfile.mkdtemp(prefix="spoolbench")
    try:
        sp = Spool(folder + "/s", max_bytes=4 * 1024 * 1024, flush_every=policy.get("flush_every"),
                   flush_ms=policy.get("flush_ms"), ticks_ms=lambda: now[0])
        rec = (b'{"timestamp":"2026-11-25T06:02:51.272Z","values":[{"dataPointId":"t",'
               b'"value":"21.5","qualityCode":"0"}]}')
        most_unflushed = 0
        for _ in range(readings):
            sp.append(rec)
            most_unflushed = max(most_unflushed, sp.unflushed)
            now[0] += gap_ms
        sp.close()
        return sp.flash_writes / readings, sp.syncs / readings, sp.bytes_written / readings, most_unflushed, len(rec)
    finally:
        shutil.rmtree(folder)


def run(out_dir):
    from tools.bench import util
    rows = []
    for label, policy in (("flush_every=1", {"flush_every": 1}), ("flush_every=10", {"flush_every": 10}),
                          ("flush_every=100", {"flush_every": 100}),
                          ("flush_ms=1000 (time only)", {"flush_every": None, "flush_ms": 1000}),
                          ("flush_ms=60000 (time only)", {"flush_every": None, "flush_ms": 60000})):
        writes, syncs, nbytes, risk, size = flash_cost(policy)
        rows.append("| `%s` | %.3f | %.3f | %.1f | %d |" % (label, writes, syncs, nbytes, risk))
    lines = ["Flash writes per reading by flush policy (10,000 readings of %d bytes, 100 ms apart, "
             "512-byte append buffer, 16 KB segments; a reading takes %d bytes on flash with its header):"
             % (size, size + HEADER),
             "", "| policy | writes per reading | syncs per reading | bytes per reading "
             "| most readings a power cut could lose |",
             "|---|---:|---:|---:|---:|"] + rows
    lines += ["", "Writes count every write call reaching the file system (append buffer spills and flushes); "
              "syncs count file commits (each flush, each segment change). Acknowledging a batch costs one "
              "more write and sync: the 16-byte cursor.", ""]
    import tempfile
    work = tempfile.mkdtemp(prefix="spoolcut")
    mpy_dir = Path(work) / "mpy"
    env = util.mpy_env(out_dir, extra=[mpy_dir])
    from tools import build
    errors = build.compile_files(build.device_sources(ROOT), Path(out_dir))
    if errors:
        raise RuntimeError("\n".join(errors))

    def start(args, **kw):
        return subprocess.Popen(util.micropython_cmd("64K") + args, env=env, **kw)

    def run_mpy(args):
        return subprocess.run(util.micropython_cmd("64K") + args, env=env, capture_output=True, text=True,
                              timeout=600)

    trials = power_cut_trials(2000, 2026, work, start, run_mpy)
    s = summary(trials)
    lines.append("Power cuts (SIGKILL at random moments, MicroPython unix port, -X heapsize=64K):")
    lines.append("")
    lines.append("| " + " | ".join(s) + " |")
    lines.append("|" + "---:|" * len(s))
    lines.append("| " + " | ".join(str(v) for v in s.values()) + " |")
    for t in trials:
        if t.problems:
            lines.append("")
            lines.append("First failure (trial %d, seed %d): %s" % (t.index, t.seed, "; ".join(t.problems)))
            break
    import shutil
    shutil.rmtree(work, ignore_errors=True)
    return "\n".join(lines)
