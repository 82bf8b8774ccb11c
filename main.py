# Runs firmware.app unless in safe mode; a bad config or a crash is printed (see firmware/power.py).
from firmware import power

power.run_main()
