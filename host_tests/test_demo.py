# `make demo` from a clean state (a temp DEMO_STATE), bounded by DEMO_SECONDS: it sets everything up,
# runs the node under MicroPython and stops cleanly; the hub's database then holds readings.
import os
import sqlite3
import subprocess
from pathlib import Path

import mpyharness

ROOT = Path(__file__).resolve().parent.parent


def test_make_demo_runs_a_node_whose_readings_reach_the_mock(tmp_path):
    mpyharness.require_micropython()
    state = tmp_path / "demo-state"
    env = dict(os.environ, DEMO_STATE=str(state), DEMO_SECONDS="20")
    proc = subprocess.run(["make", "-s", "demo"], cwd=str(ROOT), env=env, capture_output=True, text=True,
                          timeout=180)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "dashboard: http://127.0.0.1:" in out and "node | info: upload 1:" in out, out
    assert out.rstrip().endswith("stopped"), out
    with sqlite3.connect(str(state / "hub" / "mockhub.sqlite3")) as db:
        points = {r[0] for r in db.execute("SELECT datapoint FROM timeseries")}
    assert {"t", "rh", "p", "vbat", "node_uptime"} <= points, points
