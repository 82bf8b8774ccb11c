"""The soak's year (tools/soak) as a bench section: its report, invariants included."""

from tools.soak.__main__ import run_year
from tools.soak.timeline import Scenario


def run(out_dir):
    _, text, _ = run_year(Scenario())
    return text
