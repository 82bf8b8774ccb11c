"""python -m tools.bench [--only NAME ...]: run the benchmarks and rewrite BENCHMARKS.md.

Each section is a module of tools/bench with run(out_dir) -> markdown. Figures are ratios, or are
stamped with the machine they came from; nothing here is asserted by the tests.
"""

import argparse
import importlib
import sys
import time
import traceback

from tools.bench import util

SECTIONS = (
    ("heap", "Peak heap", "python -m tools.bench --only heap"),
    ("footprint", "Footprint", "python -m tools.bench --only footprint"),
    ("wire", "Wire efficiency and connections", "python -m tools.bench --only wire"),
    ("speed", "Throughput and CPU per reading", "python -m tools.bench --only speed"),
    ("spool", "Spool: flash cost and power cuts", "python -m tools.bench --only spool"),
    ("rsa", "RS256 signatures (RSA_3072 profile)", "python -m tools.bench --only rsa"),
    ("soak", "Soak: a simulated year", "make soak (= python -m tools.bench --only soak; takes tens of minutes)"),
)
MODULES = {"spool": "spool_bench", "rsa": "rsa_bench"}  # section name -> module of tools/bench, where they differ


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="*", help="run only these sections (names: %s)" % ", ".join(s[0] for s in SECTIONS))
    ap.add_argument("--out", default=str(util.ROOT / "BENCHMARKS.md"))
    args = ap.parse_args(argv)
    out_dir = util.ROOT / "build" / "bench-mpy"
    parts = ["# Benchmarks", "",
             "Written by `make bench` (python -m tools.bench) on %s, %s." % (
                 util.machine_stamp(), time.strftime("%Y-%m-%d")),
             "Each section names the command that produced it.", ""]
    failed = False
    for name, title, cmd in SECTIONS:
        if args.only and name not in args.only:
            continue
        parts += ["## " + title, "", "Command: `%s`" % cmd, ""]
        try:
            mod = importlib.import_module("tools.bench." + MODULES.get(name, name))
            parts.append(mod.run(out_dir))
        except Exception:
            failed = True
            parts.append("```\n" + traceback.format_exc() + "```")
        parts.append("")
    text = "\n".join(parts)
    if args.only:
        text = merged(args.out, text)
    with open(args.out, "w") as f:
        f.write(text)
    print("wrote", args.out)
    return 1 if failed else 0


def _sections(text):
    """(head, {title: text of that section}) of a BENCHMARKS.md, split at its "## " headings."""
    head, found, title = [], {}, None
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            title = line[3:].strip()
            found[title] = ""
        if title is None:
            head.append(line)
        else:
            found[title] += line
    return "".join(head), found


def merged(path, fresh):
    """The file at path with the sections just run (--only) replaced or added, the others kept."""
    try:
        with open(path) as f:
            old_head, old = _sections(f.read())
    except OSError:
        return fresh
    _, new = _sections(fresh)
    known = [title for _, title, _ in SECTIONS]
    out = [new.get(t) or old[t] for t in known if t in new or t in old]
    out += [text for t, text in old.items() if t not in known]
    return old_head + "\n\n".join(part.rstrip() for part in out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
