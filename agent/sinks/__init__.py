"""Outputs: one module per sink; each acknowledges a batch only once it is delivered."""
