"""Emulated GB smart-metering devices, HAN medium and DCC-side services (to come)."""
