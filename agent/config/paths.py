"""Relative paths in a workshop file are relative to the file, wherever the agent is started.

`profiles_dir` and the `*_file` secrets always were; the state folder, the outbox, the records
file, certificates and keys are made so too, once, right after validation. Otherwise `run`
started in another folder than `simulate` or the service (WorkingDirectory=/var/lib/edge-agent)
would use another state folder, certificates and trust store than the engineer just set up.
"""

from __future__ import annotations

from pathlib import Path

from agent.config.workshop import OpcUaConnection, Workshop

STDOUT = "-"  # outputs.file.path: records to standard output


def _anchor(value: str | None, base: Path) -> str | None:
    if value is None or value == STDOUT:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def anchored(workshop: Workshop, base: Path) -> Workshop:
    """The workshop with every relative file or folder path made relative to `base`."""
    update: dict[str, object] = {
        "agent": workshop.agent.model_copy(update={"state_dir": _anchor(workshop.agent.state_dir, base)}),
        "outbox": workshop.outbox.model_copy(update={"path": _anchor(workshop.outbox.path, base)}),
        "connections": tuple(
            c.model_copy(
                update={
                    "pki_dir": _anchor(c.pki_dir, base),
                    "user_certificate": _anchor(c.user_certificate, base),
                    "user_private_key": _anchor(c.user_private_key, base),
                }
            )
            if isinstance(c, OpcUaConnection)
            else c
            for c in workshop.connections
        ),
    }
    outputs = workshop.outputs
    changed_outputs: dict[str, object] = {}
    if outputs.file is not None:
        changed_outputs["file"] = outputs.file.model_copy(update={"path": _anchor(outputs.file.path, base)})
    if outputs.mqtt is not None and outputs.mqtt.tls is not None:
        tls = outputs.mqtt.tls
        files = {key: _anchor(getattr(tls, key), base) for key in ("ca_file", "cert_file", "key_file")}
        changed_outputs["mqtt"] = outputs.mqtt.model_copy(update={"tls": tls.model_copy(update=files)})
    update["outputs"] = outputs.model_copy(update=changed_outputs)
    return workshop.model_copy(update=update)
