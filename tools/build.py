"""Compile the device files with mpy-cross, as they ship to a board.

    python -m tools.build            # lib/, firmware/, boot.py, main.py -> build/mpy/
    python -m tools.build --out DIR  # somewhere else

The output mirrors the board's flash: build/mpy/lib/mindconnect/*.mpy, build/mpy/firmware/**.mpy,
build/mpy/boot.mpy and build/mpy/main.mpy (boot.py and main.py ship as source on a board; they are
compiled here only to prove they compile). Files are recompiled only when the source is newer.
It also writes build/mpy.romfs, a ROMFS image of lib/ and firmware/ (see tools/romform.py): the
device form that frozen code or a ROMFS partition gives a board, for tests and benchmarks.
Exit status 1 and the compiler's message when any file does not compile.
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVICE_TREES = ("lib", "firmware")
DEVICE_FILES = ("boot.py", "main.py")


def mpy_cross_path():
    """The mpy-cross binary of the running venv, else the one on PATH."""
    beside = Path(sys.executable).parent / "mpy-cross"
    if beside.exists():
        return str(beside)
    found = shutil.which("mpy-cross")
    if not found:
        raise SystemExit("mpy-cross not found: run `make venv` (it installs the mpy-cross package)")
    return found


def device_sources(root=ROOT):
    """(source, path relative to the flash root) for every device file."""
    out = []
    for tree in DEVICE_TREES:
        base = root / tree
        if not base.is_dir():
            continue
        for src in sorted(base.rglob("*.py")):
            if "__pycache__" in src.parts:
                continue
            out.append((src, src.relative_to(root)))
    for name in DEVICE_FILES:
        if (root / name).exists():
            out.append((root / name, Path(name)))
    return out


def source_name(rel):
    """The file name a .mpy keeps for tracebacks: the module's dotted name ("mindconnect.http" for
    lib/mindconnect/http.py). MicroPython interns that name at import anyway, so it costs no heap; a
    path of its own would be one more interned string per module, kept for good (on a 64-bit build, a
    few dozen more names cost a 7 KB name pool)."""
    parts = list(Path(rel).with_suffix("").parts)
    if parts[0] == "lib":
        parts = parts[1:]
    if len(parts) > 1 and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def compile_files(pairs, out_dir, mpy_cross=None):
    """Compile (source, relative path) pairs into out_dir; returns a list of error strings."""
    mpy_cross = mpy_cross or mpy_cross_path()
    errors = []
    for src, rel in pairs:
        dst = Path(out_dir) / rel.with_suffix(".mpy")
        if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [mpy_cross, "-s", source_name(rel), "-o", str(dst) + ".tmp", str(src)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            errors.append("%s: %s" % (rel, (proc.stderr or proc.stdout).strip()))
            continue
        os.replace(str(dst) + ".tmp", dst)
    return errors


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "build" / "mpy"), help="output folder (default build/mpy)")
    args = ap.parse_args(argv)
    pairs = device_sources()
    errors = compile_files(pairs, args.out)
    if errors:
        for e in errors:
            print("mpy-cross failed:", e, file=sys.stderr)
        return 1
    from tools import romform
    image = romform.build_image(args.out)
    print("mpy-cross: %d device files compiled into %s; ROMFS image %s (%d bytes)"
          % (len(pairs), args.out, image, image.stat().st_size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
