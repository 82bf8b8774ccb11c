"""`make soak`: a simulated year of unattended life, its report printed and put into BENCHMARKS.md.

    python -m tools.soak                       # the year: 365 days, 1,000 power cuts
    python -m tools.soak --days 30 --cuts 100  # shorter
    python -m tools.soak --no-benchmarks       # leave BENCHMARKS.md alone
    python -m tools.soak --days 30 --seed 15 --trace-spool --no-benchmarks  # follow each record

Work folder: build/soak/run (flash, hub state, node.log). Exit status 1 when an invariant is broken.
"""

import argparse
import re
import sys

from tools import demo
from tools.soak import report
from tools.soak.link import ROOT
from tools.soak.runner import Soak
from tools.soak.timeline import Scenario

SECTION = "## Soak: a simulated year"
COMMAND = "make soak"  # = python -m tools.soak; also python -m tools.bench --only soak


def section(text):
    return "%s\n\nCommand: `%s`\n\n%s\n" % (SECTION, COMMAND, text)


def stamp():
    """The machine and the commit a run came from (its real time depends on both)."""
    import subprocess

    from tools.bench.util import machine_stamp
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10).stdout.strip() or "unknown"
        if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "lib", "firmware"], cwd=ROOT,
                          capture_output=True, text=True, timeout=10).stdout.strip():
            rev += " with uncommitted changes to lib/ or firmware/"
    except OSError:
        rev = "unknown"
    return "Run on %s, at commit %s." % (machine_stamp(), rev)


def put_section(path, text):
    """Replace the soak section of BENCHMARKS.md (up to the next "## "), or add it at the end."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(SECTION) + r"\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(doc):
        doc = pattern.sub(lambda m: section(text) + "\n", doc, count=1).rstrip("\n") + "\n"
    else:
        doc = doc.rstrip("\n") + "\n\n" + section(text)
    path.write_text(doc)


def run_year(scenario, say=print, trace_spool=False):
    """Run the scenario; returns (results, Markdown text, broken invariants)."""
    soak = Soak(scenario, ROOT / "build" / "soak" / "run", demo.HEAPSIZE, say=say, trace_spool=trace_spool)
    try:
        soak.run()
        results = soak.results()
    finally:
        soak.close()
    return results, report.markdown(results, scenario), report.violations(results, scenario)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--cuts", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-benchmarks", action="store_true", help="do not write the section into BENCHMARKS.md")
    ap.add_argument("--trace-spool", action="store_true",
                    help="write the readings spool as it is on flash (cursor, segments, each record's timestamp) "
                         "into node.log after every wake cycle and at every power-on")
    args = ap.parse_args(argv)
    try:
        scenario = Scenario(days=args.days, cuts=args.cuts, seed=args.seed)
    except ValueError as e:
        ap.error(str(e))
    print("soak: %s; the node runs under MicroPython -X heapsize=%s" % (scenario.describe(), demo.HEAPSIZE),
          flush=True)
    started = stamp()  # the code the node runs is built now: a commit made during the run is not in it
    _, text, broken = run_year(scenario, say=lambda s: print(s, flush=True), trace_spool=args.trace_spool)
    text = started + "\n\n" + text
    print(text)
    (ROOT / "build" / "soak" / "report.md").write_text(section(text))
    if not args.no_benchmarks:
        put_section(ROOT / "BENCHMARKS.md", text)
        print("wrote the soak section of BENCHMARKS.md")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
