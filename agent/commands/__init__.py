"""The commands besides the daemon: probe, status, demo and its view, init, run --once."""
