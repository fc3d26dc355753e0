"""Real radios: ZigBee dongles, labgrid places and the pytest plugin (to come)."""
