"""Delivery: the durable outbox every record is committed to, and draining it into each output."""
