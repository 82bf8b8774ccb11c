# The soak's short version (tools/soak, docs/SOAK.md): 30 simulated days and 100 power cuts of the real
# app under the MicroPython unix port (the app's heap cap, tools/demo.HEAPSIZE) against the mock hub over
# TLS on 127.0.0.1, with daily outages, 429/503 bursts, a week-long outage that overflows the spool, a
# wrong board clock set right, weekly secret rotation, hourly tokens and a firmware change. Asserts the
# report's invariants; `make soak` runs the year. Intervals are longer than the year's so it stays
# well under a minute: sample every 30 min, upload every 3 h, a 16 KB spool (overflows within the week).
import mpyharness

from tools import demo
from tools.soak import report
from tools.soak.runner import Soak
from tools.soak.timeline import Scenario

SHORT = Scenario(days=30, cuts=100, seed=7, sample_s=1800, upload_s=10800, spool_bytes=16384)


def test_thirty_days_and_a_hundred_power_cuts_keep_every_reading(tmp_path):
    mpyharness.require_micropython()
    mpyharness.ensure_built()
    soak = Soak(SHORT, tmp_path / "soak", demo.HEAPSIZE, trace_spool=True)  # node.log follows each record
    try:
        soak.run()
        r = soak.results()
    finally:
        soak.close()
    broken = report.violations(r, SHORT)
    assert broken == [], "\n".join(broken) + "\n\n" + report.markdown(r, SHORT) + \
        "\n\nnode log: " + str(tmp_path / "soak" / "node.log")
    assert r["taken"] >= 30 * 48 - 200  # sampling went on through outages, cuts and the clock jump
    assert r["delivered"] + r["overflow_lost"] + r["queued_at_end"] == r["taken"]
    assert r["drop_cycles"] >= 1 and r["overflow_lost"] <= r["dropped_counted"]
    # tokens live 1 h, uploads are 3 h apart: nearly every upload that got through fetched one
    assert r["rotations"] >= 4 and r["tokens"] >= 120 and r["cuts"] == 100


def test_the_report_replaces_its_own_section_of_benchmarks_md(tmp_path):
    from tools.soak.__main__ import SECTION, put_section
    md = tmp_path / "BENCHMARKS.md"
    md.write_text("# Benchmarks\n\n## Peak heap\n\nold figures\n")
    put_section(md, "first year")
    put_section(md, "second year")
    doc = md.read_text()
    assert doc.count(SECTION) == 1 and "second year" in doc and "first year" not in doc
    assert doc.startswith("# Benchmarks\n\n## Peak heap\n\nold figures\n")
    md.write_text(doc + "\n## Later section\n\nkept\n")
    put_section(md, "third year")
    doc = md.read_text()
    assert "third year" in doc and "second year" not in doc and doc.endswith("## Later section\n\nkept\n")
