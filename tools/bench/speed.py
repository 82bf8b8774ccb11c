"""Throughput of a 10 MB file exchange against a raw TLS write, and CPU per reading on both runtimes."""

import os
import shutil
import subprocess
import sys

from tools.bench import util
from tools.bench.rig import FILE_SIZES, SCRIPT, Rig

TRIES = 3
CPU_READINGS = 5000


def best_ms(rig, name, data):
    """Fastest of TRIES runs (at a roomy heap: this is about time, not memory)."""
    times = []
    for _ in range(TRIES):
        ok, ms, out = rig.run(name, 512, 0, data)
        if not ok:
            raise RuntimeError("%s failed:\n%s" % (name, out[-2000:]))
        times.append(ms)
    return min(times)


def cpu_figures(rig):
    """(encode ns, spool ns) per reading for MicroPython and CPython, the same script and lib/."""
    out = {}
    for runtime in ("MicroPython", "CPython"):
        folder = rig.work / ("cpu-" + runtime)
        args = ["cpu", str(CPU_READINGS), str(folder), "-", "-", "-", "0"]
        if runtime == "MicroPython":
            cmd = util.micropython_cmd("512K") + ["-m", "mpy_workload"] + args
            env = rig.env
        else:
            cmd = [sys.executable, str(SCRIPT)] + args
            env = dict(os.environ, PYTHONPATH=str(util.ROOT / "lib"))
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        shutil.rmtree(folder, ignore_errors=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("@@US")]
        if proc.returncode or not line:
            raise RuntimeError("cpu workload failed on %s:\n%s" % (runtime, proc.stdout + proc.stderr))
        out[runtime] = [int(x) for x in line[0].split()[1:]]
    return out


def run(out_dir):
    rig = Rig(out_dir)
    try:
        big = rig.files[FILE_SIZES[-1]]
        stack = best_ms(rig, "file", big)
        raw = best_ms(rig, "raw", big)
        cpu = cpu_figures(rig)
    finally:
        rig.close()
    mb = FILE_SIZES[-1] / 1e6
    lines = ["Loopback throughput, MicroPython unix port, best of %d: a %d MB file exchanged through our stack "
             "(agent, multipart, http, transport; kept token, new TLS connection, the mock hub hashing and "
             "storing it) against a bare `tls` socket writing the same file in 4 KB pieces to a sink that "
             "discards it." % (TRIES, mb), "",
             "| path | ms | MB/s |", "|---|---:|---:|",
             "| our stack, file exchange | %d | %.1f |" % (stack, mb * 1000 / stack),
             "| raw TLS write | %d | %.1f |" % (raw, mb * 1000 / raw), "",
             "Ratio our stack / raw TLS throughput: **%.2f**." % (raw / stack), "",
             "CPU per reading (%d readings, one DOUBLE data point; the spool with its default policy, "
             "flush every reading, on this machine's disk):" % CPU_READINGS, "",
             "| runtime | encode (µs) | spool append (µs) |", "|---|---:|---:|"]
    for runtime, (enc, sp) in cpu.items():
        lines.append("| %s | %.1f | %.1f |" % (runtime, enc / 1000, sp / 1000))
    return "\n".join(lines)
