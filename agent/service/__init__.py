"""What `edge-agent run` needs around the agent as a service: signals, logs, systemd, /health."""
