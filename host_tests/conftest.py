"""Host-side pytest configuration: import paths, the `mpy` fixture and the per-runtime summary."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT / "lib", ROOT, Path(__file__).resolve().parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import mpyharness  # noqa: E402

_RUNTIME_COUNTS = {}
_DRIVES_MICROPYTHON = set()  # node ids of host tests that started a micropython process themselves
_popen_init = subprocess.Popen.__init__


def _noting_popen_init(self, args, *a, **kw):
    argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args or ())
    current = os.environ.get("PYTEST_CURRENT_TEST")
    if current and argv and os.path.basename(os.fsdecode(argv[0])) == "micropython":
        _DRIVES_MICROPYTHON.add(current.rsplit(" (", 1)[0])
    _popen_init(self, args, *a, **kw)


subprocess.Popen.__init__ = _noting_popen_init


def _runtime_of(report):
    if "[micropython" in report.nodeid:
        return "micropython"
    return "host+mpy" if report.nodeid in _DRIVES_MICROPYTHON else "cpython"


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        key = (_runtime_of(report), report.outcome)
        _RUNTIME_COUNTS[key] = _RUNTIME_COUNTS.get(key, 0) + 1


def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    tr.section("tests per runtime")
    for rt in ("cpython", "micropython", "host+mpy"):
        parts = ["%d %s" % (_RUNTIME_COUNTS.get((rt, o), 0), o) for o in ("passed", "failed", "skipped")]
        tr.write_line("%-12s %s" % (rt + ":", ", ".join(parts)))
    tr.write_line("(host+mpy: host tests that ran the micropython unix port as a process themselves)")
    tr.write_line("micropython heap cap: -X heapsize=%s" % mpyharness.heapsize())
    rom = mpyharness.ROM_FORM_TESTS
    if rom:
        tr.write_line("micropython in ROM form (lib/ and firmware/ in place from a ROMFS image; the process "
                      "gets the cap + the image, which is flash on a board, and keeps exactly the cap's heap):")
        for nodeid, cap in rom:
            tr.write_line("  %s at %s" % (nodeid, cap))


class MicroPython:
    """Runs code under the MicroPython unix port (fixture `mpy`)."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.heapsize = mpyharness.heapsize()

    def run_code(self, code, heap=None, env=None, timeout=120, name="snippet"):
        return mpyharness.run_code(code, self.tmp_path, heap=heap, env=env, timeout=timeout, name=name)

    def run(self, args, **kw):
        return mpyharness.run(args, **kw)

    def popen(self, args, **kw):
        return mpyharness.popen(args, **kw)


@pytest.fixture
def mpy(tmp_path):
    mpyharness.require_micropython()
    return MicroPython(tmp_path)


SHARED = ROOT.parent / "shared"


@pytest.fixture
def vectors_dir(monkeypatch):
    """shared/vectors beside the clone (DUAL: exported as VECTORS_DIR)."""
    d = SHARED / "vectors"
    if not d.is_dir():
        pytest.fail("shared/vectors not found beside the clone at %s" % d)
    monkeypatch.setenv("VECTORS_DIR", str(d))
    return d


# Fixture modules, one per area (each owned by the area's tests).
from fixtures_agent import *  # noqa: E402,F401,F403
from fixtures_http import *  # noqa: E402,F401,F403
from fixtures_mockhub import *  # noqa: E402,F401,F403
from fixtures_provision import *  # noqa: E402,F401,F403
from fixtures_rsa import *  # noqa: E402,F401,F403
from fixtures_spool import *  # noqa: E402,F401,F403
