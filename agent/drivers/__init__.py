"""Drivers: one per protocol; each owns one connection and reads every device behind it."""
