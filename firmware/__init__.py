"""The sensor-node application built on lib/mindconnect: config, boards, sensors, network, power."""
