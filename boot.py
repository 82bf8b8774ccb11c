# Board boot: the safe-mode check only (held pin or repeated crashes: see firmware/power.py).
from firmware import power

power.boot()
