"""Published payload schemas: a JSON Schema for every record kind and every MQTT topic shape.

    agent/schemas/records.py      record schemas, built from the code's own definitions
    agent/schemas/umh.py          the same records as UMH `_historian` payloads
    agent/schemas/catalogue.py    every topic shape of both styles, and its schema
    agent/schemas/files.py        the shipped files: agent/schemas/json/*.json

The files in agent/schemas/json/ ship in the wheel; `edge-agent schemas` lists them and copies
them out. They are generated (`python -m agent.schemas`), and a test holds them equal to what
the code generates, so they cannot drift from it.
"""
