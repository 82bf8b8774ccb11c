"""Helpers shared by the benchmarks: the interpreter, its module path, and the machine stamp."""

import os
import platform
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def micropython():
    beside = Path(sys.executable).parent / "micropython"
    return str(beside) if beside.exists() else shutil.which("micropython")


def micropython_cmd(heap):
    exe = micropython()
    if not exe:
        raise SystemExit("micropython not found: run `make venv`")
    return [exe, "-X", "heapsize=" + heap]


def mpy_env(out_dir, extra=()):
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([str(p) for p in extra] + [str(Path(out_dir) / "lib"), str(out_dir)])
    return env


def machine_stamp():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores, %s, Python %s" % (cpu, os.cpu_count() or 0, platform.system(), platform.python_version())
