"""Relative paths in a workshop file mean the same folder wherever the agent is started."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.connections import OpcUaConnection
from agent.config.loader import load_config
from tests.unit.test_profile_lookup import README_WORKSHOP

OPCUA = """\
  - {id: cell, transport: opcua, url: "opc.tcp://10.0.1.50:4840", pki_dir: pki,
     user_certificate: ids/op.der, user_private_key: /etc/ids/op.pem}
"""


def test_relative_paths_are_relative_to_the_workshop_file_not_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    text = README_WORKSHOP.replace(
        "agent: {id: gw-grinding-1}", "agent: {id: gw-grinding-1, state_dir: state}"
    )
    text = text.replace("connections:\n", "connections:\n" + OPCUA)
    text += "outbox: {path: data/outbox.db}\noutputs:\n  file: {path: records.jsonl}\n"
    text += "  mqtt: {host: broker, tls: {ca_file: ca.crt, cert_file: /abs/gw.crt, key_file: gw.key}}\n"
    (folder / "workshop.yaml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # started from elsewhere, with a relative -c
    workshop = load_config(Path("etc/workshop.yaml"), environ={}).workshop
    assert workshop.agent.state_dir == str(folder / "state")
    assert workshop.outbox.path == str(folder / "data/outbox.db")
    assert workshop.outputs.file is not None
    assert workshop.outputs.file.path == str(folder / "records.jsonl")
    assert workshop.outputs.mqtt is not None
    assert workshop.outputs.mqtt.tls is not None
    assert workshop.outputs.mqtt.tls.ca_file == str(folder / "ca.crt")
    assert workshop.outputs.mqtt.tls.cert_file == "/abs/gw.crt"
    opcua = workshop.connections[0]
    assert isinstance(opcua, OpcUaConnection)
    assert (opcua.pki_dir, opcua.user_certificate, opcua.user_private_key) == (
        str(folder / "pki"),
        str(folder / "ids/op.der"),
        "/etc/ids/op.pem",
    )


def test_records_to_standard_output_stay_so(tmp_path: Path) -> None:
    path = tmp_path / "workshop.yaml"
    path.write_text(README_WORKSHOP + "outputs:\n  file: {path: '-'}\n", encoding="utf-8")
    file_output = load_config(path, environ={}).workshop.outputs.file
    assert file_output is not None
    assert file_output.path == "-"
