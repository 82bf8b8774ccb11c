"""Footprint of the device bundle: bytes of each .mpy, totals, and heap retained after import."""

import subprocess
from pathlib import Path

from tools import build
from tools.bench import util

IMPORT_PROBE = """
import gc
gc.collect()
before = gc.mem_alloc()
import {mod}
gc.collect()
print("@@RETAINED", gc.mem_alloc() - before)
"""


def mpy_sizes(out_dir):
    pairs = build.device_sources()
    errors = build.compile_files(pairs, out_dir)
    if errors:
        raise RuntimeError("\n".join(errors))
    rows = []
    for src, rel in pairs:
        mpy = Path(out_dir) / rel.with_suffix(".mpy")
        rows.append((str(rel), src.stat().st_size, mpy.stat().st_size))
    return rows


def retained_after_import(module, out_dir):
    code = IMPORT_PROBE.format(mod=module)
    proc = subprocess.run(util.micropython_cmd("512K") + ["-c", code], capture_output=True, text=True,
                          env=util.mpy_env(out_dir), timeout=60)
    for line in proc.stdout.splitlines():
        if line.startswith("@@RETAINED"):
            return int(line.split()[1])
    return None


def run(out_dir):
    rows = mpy_sizes(out_dir)
    lines = ["| file | source bytes | .mpy bytes |", "|---|---:|---:|"]
    totals = {}
    for rel, src_size, mpy_size in rows:
        lines.append("| `%s` | %d | %d |" % (rel, src_size, mpy_size))
        top = rel.split("/")[0] if "/" in rel else "boot/main"
        totals[top] = totals.get(top, 0) + mpy_size
    lines.append("")
    lines.append("| tree | .mpy total bytes |")
    lines.append("|---|---:|")
    for top, n in sorted(totals.items()):
        lines.append("| `%s` | %d |" % (top, n))
    lines.append("")
    lines.append("Heap retained after import (unix port, 64-bit: objects are about twice their ESP32 size):")
    lines.append("")
    lines.append("| module | bytes retained |")
    lines.append("|---|---:|")
    for rel, _, _ in rows:
        if not rel.startswith("lib/mindconnect/") or rel.endswith("__init__.py"):
            continue
        mod = "mindconnect." + Path(rel).stem
        n = retained_after_import(mod, out_dir)
        lines.append("| `%s` | %s |" % (mod, n if n is not None else "import failed"))
    return "\n".join(lines)
