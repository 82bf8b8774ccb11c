"""Device form ("ROM form"): run MicroPython processes with lib/ and firmware/ executed in place from a
ROMFS image, the way a board runs them frozen into the firmware or from a ROMFS partition.

Why: importing plain .mpy files copies their bytecode and constants into the heap (about 80 KB for
the agent on the 64-bit unix port). On a board the code is frozen (firmware/manifest.py) or sits in a
ROMFS partition, and stays in flash. A test or benchmark that wants the device's heap picture runs its
process in ROM form; plain .mpy figures stay what a user gets who copies .mpy files to the filesystem.

    build_image(build_dir, out)     ROMFS image of build_dir/lib and build_dir/firmware (mpremote's builder);
                                    extra=[(name, folder)] adds more compiled code, e.g. the test harness
    command(exe, cap, args, image)  (argv, env) running `-m romboot <args>` with the cap's heap left over

Heap accounting, plainly: the process gets `-X heapsize=` cap + about the image size, because the image
has to sit in this interpreter's heap for VfsRom to read it in place (the unix port has no flash).
tools/romboot.py allocates it first, as one buffer padded so that exactly the usable heap of a plain
`-X heapsize=<cap>` process is left for everything else, and checks that it is. So a test "at 64K in
ROM form" runs with the same free heap as at 64K plain, with the code in "flash".
"""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREES = ("lib", "firmware")  # what a board gets frozen or in ROMFS; boot.py and main.py stay on its filesystem
BOOT = Path(__file__).with_name("romboot.py")
_usable = {}


def _add_tree(writer, folder):
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            writer.opendir(entry.name)
            _add_tree(writer, entry)
            writer.closedir()
        elif entry.suffix == ".mpy":
            writer.mkfile(entry.name, entry.read_bytes())


def image_path(build_dir):
    """Where build_image writes by default: build/mpy -> build/mpy.romfs."""
    build_dir = Path(build_dir)
    return build_dir.with_name(build_dir.name + ".romfs")


def build_image(build_dir, out=None, extra=()):
    """Write the ROMFS image of the compiled device trees in build_dir, plus the (name, folder) pairs of
    extra as /rom/<name> (when a .mpy is newer than the image); returns its path."""
    from mpremote.romfs import VfsRomWriter
    build_dir = Path(build_dir)
    out = Path(out) if out else image_path(build_dir)
    trees = [(t, build_dir / t) for t in TREES] + [(name, Path(folder)) for name, folder in extra]
    files = [p for _, folder in trees for p in folder.rglob("*.mpy")]
    if not files:
        raise RuntimeError("no .mpy files under %s: run `make build` first" % build_dir)
    if out.exists() and out.stat().st_mtime >= max(p.stat().st_mtime for p in files):
        return out
    writer = VfsRomWriter()
    for name, folder in trees:
        writer.opendir(name)
        _add_tree(writer, folder)
        writer.closedir()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(writer.finalise())
    os.replace(tmp, out)
    return out


def parse_size(text):
    """Bytes of a heapsize like "64K", "1M" or "65536"."""
    text = str(text).strip().upper()
    scale = {"K": 1024, "M": 1024 * 1024}.get(text[-1:], 1)
    return int(text[:-1] if scale > 1 else text) * scale


def usable_heap(exe, cap):
    """Usable GC heap of `micropython -X heapsize=<cap>` (gc.mem_free + gc.mem_alloc), measured once."""
    key = (exe, cap)
    if key not in _usable:
        proc = subprocess.run([exe, "-X", "heapsize=" + cap, "-c", "import gc;print(gc.mem_free()+gc.mem_alloc())"],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError("cannot measure the heap of -X heapsize=%s: %s" % (cap, proc.stderr.strip()))
        _usable[key] = int(proc.stdout.split()[-1])
    return _usable[key]


def heapsize(cap, image_bytes):
    """The -X heapsize for a ROM-form process: the cap, the image, and the GC's tables for the image's
    blocks (3 bits per 32-byte block), with 1 KB of slack that romboot pads into the image buffer."""
    extra = image_bytes + image_bytes // 64 + 1024
    return str(parse_size(cap) + extra)


def command(exe, cap, args, image, rom_path=("/rom/lib", "/rom")):
    """(argv, env additions) to run `args` (e.g. ["-m", "mpy_runner", ...]) in ROM form under `cap`.

    tools/romboot.py must be importable (compiled onto MICROPYPATH by the caller); args must start
    with -m: romboot runs that module after mounting the image. rom_path: the folders of the image put
    first on sys.path, in order.
    """
    if not args or args[0] != "-m":
        raise ValueError("ROM form runs modules: args must start with -m")
    size = Path(image).stat().st_size
    argv = [exe, "-X", "heapsize=" + heapsize(cap, size), "-m", "romboot"] + list(args[1:])
    env = {"MPY_ROM_IMAGE": str(image), "MPY_ROM_HEAP": str(usable_heap(exe, cap)), "MPY_ROM_PATH": ":".join(rom_path)}
    return argv, env
