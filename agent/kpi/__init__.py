"""Pure KPI domain code: machine states, shift calendar, counters, OEE, energy. No I/O here."""
