"""The running agent: task groups, poll loops, the KPI loop, restarts, continuity across stops."""
