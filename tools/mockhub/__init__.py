"""mockhub: a local stand-in for the Insights Hub (MindConnect) agent API, with faults and a dashboard.

    from tools.mockhub import MockHub
    hub = MockHub(state_dir).start(); ...; hub.stop()

Command line: python -m tools.mockhub --help
"""

from tools.mockhub.hub import MockHub

__all__ = ["MockHub"]
