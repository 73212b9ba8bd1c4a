"""`*_file` keys: secrets read from files (systemd LoadCredential=, Docker secrets).

`password_file: /run/credentials/edge-agent.service/mqtt` becomes `password: <file content>`
before validation. Only the keys in SECRET_KEYS may come from files, so a typo such as
`pasword_file` is still reported as an unknown key. A secret file is a regular file of at most
MAX_SECRET_BYTES (agent/config/bounded.py): /dev/zero, a FIFO or a log file named by mistake is an
error at the key's line, found without reading it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.config.bounded import FileReadError, read_bounded
from agent.config.issues import ConfigIssue, ConfigPath
from agent.config.yamlsource import SECRET_KEYS, LoadedYaml

MAX_SECRET_BYTES = 64 * 1024  # a password or token is a few hundred bytes; a certificate chain fits too


def resolve_secret_files(loaded: LoadedYaml, base_dir: Path) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    _walk(loaded.data, (), loaded, base_dir, issues)
    return issues


def _walk(node: Any, path: ConfigPath, loaded: LoadedYaml, base: Path, issues: list[ConfigIssue]) -> None:
    if isinstance(node, list):
        for index, item in enumerate(node):
            _walk(item, (*path, index), loaded, base, issues)
        return
    if not isinstance(node, dict):
        return
    for key in SECRET_KEYS:
        file_key = f"{key}_file"
        if file_key not in node:
            continue
        where = (*path, file_key)
        if key in node:
            issues.append(loaded.issue(where, f"give either '{key}' or '{file_key}', not both", key=True))
            del node[file_key]  # reported once, here; not again as an unknown key
            continue
        file_name = node.pop(file_key)
        if not isinstance(file_name, str) or not file_name:
            issues.append(loaded.issue(where, "expected a file path"))
            continue
        secret_path = Path(file_name) if Path(file_name).is_absolute() else base / file_name
        try:
            node[key] = read_bounded(secret_path, MAX_SECRET_BYTES, "secret file").decode().strip("\r\n")
        except FileReadError as error:
            issues.append(loaded.issue(where, f"cannot read secret file {secret_path}: {error}"))
        except UnicodeDecodeError as error:
            issues.append(loaded.issue(where, f"secret file {secret_path} is not UTF-8 text: {error.reason}"))
    for key, value in list(node.items()):
        _walk(value, (*path, key), loaded, base, issues)
