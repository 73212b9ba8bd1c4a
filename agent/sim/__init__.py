"""Simulated bearing-workshop devices: grinders, assembly machines, inspection sorters, meters."""
