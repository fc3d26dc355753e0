"""Real radios: the CHF on zigpy, the sim radio, dongles, labgrid and the pytest plugin."""
