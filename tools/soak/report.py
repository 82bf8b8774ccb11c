"""The soak's report: the invariants a run must keep, and the figures as Markdown."""

from tools.soak.timeline import DAY_MS

ROTATE_BEFORE_S = 25 * 3600  # the agent rotates this long before the secret expires (agent.ROTATE_BEFORE_S)


def expected_rotations(scenario):
    """Rotations a node awake all along would make: one per (secret lifetime - rotation margin)."""
    period = scenario.secret_lifetime_s - ROTATE_BEFORE_S
    return scenario.days * DAY_MS // 1000 // period


def violations(r, scenario):
    """The broken invariants of a run's results, as sentences; [] when the run kept them all."""
    out = []

    def need(ok, text):
        if not ok:
            out.append(text)

    need(r["crashes"] == 0, "the node process ended on its own %d times (see node.log)" % r["crashes"])
    need(r["lost"] == 0, "%d readings lost outside the counted overflow (first: %s)" % (r["lost"], r["lost_stamps"]))
    need(r["week_overflowed"], "the week-long outage did not overflow the spool")
    need(r["overflow_lost"] <= r["dropped_counted"], "%d readings lost in the overflow but only %d counted by the "
         "spool" % (r["overflow_lost"], r["dropped_counted"]))
    need(r["cut_lost"] <= r["cuts"], "%d readings lost to %d power cuts (at most one each)" % (
        r["cut_lost"], r["cuts"]))
    need(r["cuts"] == scenario.cuts, "%d power cuts made of %d planned" % (r["cuts"], scenario.cuts))
    need(r["reonboardings"] == 0, "the node onboarded again %d times" % r["reonboardings"])
    need(r["rotations"] >= expected_rotations(scenario) - 1, "%d secret rotations, %d expected" % (
        r["rotations"], expected_rotations(scenario)))
    need(r["bad_values"] == 0, "%d values differ from what the sensor gave: %s" % (
        r["bad_values"], r["bad_value_examples"]))
    need(r["unknown"] == 0, "%d readings at the hub were never taken by the node" % r["unknown"])
    need(r["incomplete"] == 0, "%d readings arrived with some of their points missing" % r["incomplete"])
    need(r["dsc_versions"] == 2, "%d data model versions at the hub, 2 expected (before and after the firmware "
                                 "change)" % r["dsc_versions"])
    need(r["mappings"] == 2, "%d mappings at the hub, 2 expected after the firmware change" % r["mappings"])
    most_queued = scenario.upload_s // scenario.sample_s + 2
    need(r["queued_at_end"] <= most_queued, "%d readings still queued at the end (a healthy node holds at most %d)"
         % (r["queued_at_end"], most_queued))
    return out


def markdown(r, scenario):
    """The report as Markdown (scenario, figures, invariants)."""
    h = 3600000
    rows = [
        ("readings taken (wake cycles that reached their sleep)", r["taken"]),
        ("readings delivered", r["delivered"]),
        ("readings delivered twice (batch in flight at a power cut)", r["delivered_twice"]),
        ("readings lost outside the counted overflow (must be 0)", r["lost"]),
        ("readings lost to a full spool (drop-oldest, counted)", r["overflow_lost"]),
        ("wake cycles in which the spool dropped records: in the week-long outage / outside it",
         "%d / %d" % (r["drop_cycles"] - r["drop_cycles_outside_week"], r["drop_cycles_outside_week"])),
        ("records dropped by the spool, counted (readings + telemetry)", r["dropped_counted"]),
        ("readings of cycles cut short by a power cut: never arrived", "%d of %d" % (r["cut_lost"], r["interrupted"])),
        ("readings still queued at the end", r["queued_at_end"]),
        ("secret rotations", r["rotations"]),
        ("re-onboardings (must be 0)", r["reonboardings"]),
        ("access tokens fetched", r["tokens"]),
        ("TLS handshakes", r["handshakes"]),
        ("requests / exchanges", "%d / %d" % (r["requests"], r["exchanges"])),
        ("wake cycles / power-ons", "%d / %d" % (r["cycles"], r["power_ons"])),
        ("power cuts / node crashes", "%d / %d" % (r["cuts"], r["crashes"])),
        ("outages / 429+503 bursts", "%d / %d" % (r["outages"], r["bursts"])),
        ("data model versions / mappings at the hub", "%d / %d" % (r["dsc_versions"], r["mappings"])),
        ("heap cap (-X heapsize)", r["heapsize"]),
        ("largest heap live at a deep sleep (after gc.collect)", "%.1f KB" % (r["live_heap_max"] / 1024)),
        ("largest growth of that heap within one power-on, once the agent is loaded",
         "%.1f KB" % (r["live_heap_growth"] / 1024)),
        ("lowest free heap reported by the node's telemetry (at upload)",
         "n/a" if r["min_free_heap"] is None else "%.1f KB" % (r["min_free_heap"] / 1024)),
        ("worst time from an outage's end to the delivery of a reading taken in it",
         "%.1f h (%s)" % (r["worst_delivery_after_outage_ms"] / h, r["worst_outage"])),
        ("longest gap between two readings taken", "%.1f h" % (r["worst_sampling_gap_ms"] / h)),
        ("real time", "%.0f s" % r["real_s"]),
    ]
    broken = violations(r, scenario)
    lines = ["Scenario: %s." % scenario.describe(), "",
             "| figure | value |", "|---|---:|"]
    lines += ["| %s | %s |" % row for row in rows]
    lines += ["", "Invariants: " + ("all kept." if not broken else "BROKEN: " + "; ".join(broken))]
    return "\n".join(lines)
