"""The report history: what the workshop board and the shift, day and month reports read."""
