"""Peak MicroPython heap per workload: the smallest -X heapsize (KB steps, bisection) at which it passes.

The unix port has no peak counter, so the smallest heap a workload still completes in is the peak
measure. Each workload is measured twice: plain (.mpy files loaded into the heap, as when they are
copied to a board's filesystem) and in ROM form (the code executed in place from a ROMFS image, as
frozen into the firmware or from a ROMFS partition; see tools/romform.py). The readings and file rows
(plain) also go into docs/bench/heap.svg: peak heap against data size.
"""

from tools.bench import util
from tools.bench.rig import FILE_SIZES, Rig

LO_KB, HI_KB = 8, 512
READING_COUNTS = (1, 1000, 10000, 100000)
SVG = util.ROOT / "docs" / "bench" / "heap.svg"


def smallest_heap(rig, name, size=0, data="", hint=None, form="plain"):
    """Smallest heap in KB at which the workload passes; raises with its output when it fails at HI_KB."""
    ok, _, out = rig.run(name, HI_KB, size, data, form)
    if not ok:
        raise RuntimeError("%s %s (%s) fails even at %dK:\n%s" % (name, size, form, HI_KB, out[-2000:]))
    lo, hi = LO_KB, HI_KB
    if hint:  # peaks are expected flat: try a narrow window around the last answer first
        if rig.run(name, hint + 8, size, data, form)[0]:
            hi = hint + 8
            if not rig.run(name, max(LO_KB, hint - 8), size, data, form)[0]:
                lo = max(LO_KB, hint - 8)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if rig.run(name, mid, size, data, form)[0]:
            hi = mid
        else:
            lo = mid
    return hi


def both_forms(rig, name, size=0, data="", hints=(None, None)):
    """(plain KB, ROM-form KB) of one workload."""
    return (smallest_heap(rig, name, size, data, hints[0]),
            smallest_heap(rig, name, size, data, hints[1], form="rom"))


def svg_plot(series, path):
    """A log-x line chart, written by hand: series = [(label, colour, [(size, kb), ...])]."""
    import math
    w, h, left, bottom, top, right = 640, 320, 60, 40, 20, 20
    xs = [x for _, _, pts in series for x, _ in pts]
    ymax = max(kb for _, _, pts in series for _, kb in pts) * 1.25
    x0, x1 = math.log10(min(xs)), math.log10(max(xs))

    def px(x):
        return left + (math.log10(x) - x0) / (x1 - x0) * (w - left - right)

    def py(y):
        return h - bottom - y / ymax * (h - bottom - top)

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="11">' % (w, h), '<rect width="100%" height="100%" fill="white"/>',
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (left, h - bottom, w - right, h - bottom),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (left, top, left, h - bottom)]
    for e in range(int(x0), int(math.ceil(x1)) + 1):
        x = px(10 ** e)
        out.append('<text x="%.1f" y="%d" text-anchor="middle">1e%d</text>' % (x, h - bottom + 15, e))
    step = max(8, int(ymax / 5 // 8 * 8))
    for y in range(0, int(ymax) + 1, step):
        out.append('<text x="%d" y="%.1f" text-anchor="end">%d K</text>' % (left - 5, py(y) + 4, y))
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (left, py(y), w - right, py(y)))
    out.append('<text x="%d" y="%d" text-anchor="middle">size (readings, or file bytes); log scale</text>'
               % ((w + left) // 2, h - 5))
    for i, (label, colour, pts) in enumerate(series):
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (
            colour, " ".join("%.1f,%.1f" % (px(x), py(y)) for x, y in pts)))
        for x, y in pts:
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (px(x), py(y), colour))
        out.append('<text x="%d" y="%d" fill="%s">%s</text>' % (left + 10, top + 14 + 14 * i, colour, label))
    out.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")


def run(out_dir):
    rig = Rig(out_dir)
    try:
        rows = [("import the agent (agent, http, items, transport)",) + both_forms(rig, "import"),
                ("sign a JWT (client assertion)",) + both_forms(rig, "jwt"),
                ("a token call (onboarded store, new TLS connection)",) + both_forms(rig, "token")]
        reading_pts, hints = [], (None, None)
        for n in READING_COUNTS:
            hints = both_forms(rig, "readings", n, hints=hints)
            reading_pts.append((n, hints[0]))
            rows.append(("exchange of %d reading%s" % (n, "" if n == 1 else "s"),) + hints)
        file_pts, hints = [], (None, None)
        for n in FILE_SIZES:
            hints = both_forms(rig, "file", 0, rig.files[n], hints=hints)
            file_pts.append((n, hints[0]))
            rows.append(("exchange of a %s file" % human(n),) + hints)
        cycle = both_forms(rig, "cycle", 100, rig.files[FILE_SIZES[0]])
        rows.append(("agent cycle: onboard, token, DSC, 100 readings, 10 KB file, event",) + cycle)
        node = both_forms(rig, "node")
        rows.append(("full node cycle: firmware/app.py on the sim board, 13 samples, 3 uploads",) + node)
    finally:
        rig.close()
    svg_plot([("readings exchanged", "#1f77b4", reading_pts), ("file bytes exchanged", "#d62728", file_pts)], SVG)
    lines = ["Peak heap = the smallest `-X heapsize` (bisection in 1 KB steps between %dK and %dK) at which the "
             "workload completes, MicroPython %s unix port (64-bit: objects are about twice their ESP32 size), "
             "against the mock hub over real TLS on 127.0.0.1. TLS buffers live outside this heap, as on ESP32." % (
                 LO_KB, HI_KB, mpy_version()), "",
             "- **plain .mpy**: the device files as .mpy on the filesystem; the loader copies their bytecode and "
             "constants into the heap (what a user gets who copies .mpy files to the board).",
             "- **ROM form**: lib/, firmware/ and the workload script executed in place from a ROMFS image, as "
             "when they are frozen into the firmware (firmware/manifest.py) or deployed to a ROMFS partition. "
             "The process gets `-X heapsize` = the figure + the image (the unix port has no flash), and the "
             "image takes exactly its own GC blocks first, so the figure is the heap left for everything else. "
             "Still in the heap: module dicts, function and class objects, qstr pools, string constants.",
             "", "| workload | plain .mpy (KB) | ROM form (KB) |", "|---|---:|---:|"]
    lines += ["| %s | %d | %d |" % r for r in rows]
    lines += ["", "![peak heap against size (plain .mpy)](docs/bench/heap.svg)", "",
              "Readings (plain): %s. Files (plain): %s. A flat line means memory does not grow with the amount "
              "of data." % (", ".join("%d: %dK" % p for p in reading_pts),
                            ", ".join("%s: %dK" % (human(n), kb) for n, kb in file_pts)),
              "", "Full node cycle (config check at boot, sampling, onboarding, data model, 3 uploads over "
              "125 simulated seconds): **%dK** plain, **%dK** in ROM form; the agent cycle alone: %dK plain, "
              "%dK in ROM form." % (node + cycle)]
    return "\n".join(lines)


def human(n):
    return "%d MB" % (n // 1000000) if n >= 1000000 else "%d KB" % (n // 1000)


def mpy_version():
    import subprocess
    proc = subprocess.run([util.micropython(), "-c",
                           "import sys; print('.'.join(str(x) for x in sys.implementation.version[:3]))"],
                          capture_output=True, text=True, timeout=30)
    return proc.stdout.strip()
