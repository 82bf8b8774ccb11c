"""Host-side pytest configuration: import paths, the `mpy` fixture and the per-runtime summary."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT / "lib", ROOT, Path(__file__).resolve().parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import mpyharness  # noqa: E402

_RUNTIME_COUNTS = {}


def _runtime_of(report):
    return "micropython" if "[micropython" in report.nodeid else "cpython"


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        key = (_runtime_of(report), report.outcome)
        _RUNTIME_COUNTS[key] = _RUNTIME_COUNTS.get(key, 0) + 1


def pytest_terminal_summary(terminalreporter):
    tr = terminalreporter
    tr.section("tests per runtime")
    for rt in ("cpython", "micropython"):
        parts = ["%d %s" % (_RUNTIME_COUNTS.get((rt, o), 0), o) for o in ("passed", "failed", "skipped")]
        tr.write_line("%-12s %s" % (rt + ":", ", ".join(parts)))
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
