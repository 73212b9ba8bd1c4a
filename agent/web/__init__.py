"""The workshop board and the reports, served by the agent's local web server (agent/service/health.py)."""
