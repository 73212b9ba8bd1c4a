"""Host names and addresses as people write them in a configuration: an IP address or a host
name, and nothing else. A URL, a port glued on or a space would otherwise pass validation and
fail only when the agent connects, as 'cannot resolve'; here it is an error at its line that says
what to write."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import Annotated

from pydantic import AfterValidator, Field

# RFC 1123 labels; '_' too, which some plants' hosts files and DNS servers hand out
HOST_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
MAX_HOST_NAME = 253
GLUED_PORT = re.compile(r"^(?P<host>[^:\s]+):(?P<port>\d+)$")


def _host_problem(host: str) -> str | None:
    """Why `host:` is neither an IP address nor a host name, said with what to write; None: fine.
    A URL or a port glued on would otherwise fail only when the agent connects, as 'cannot resolve'."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _more_than_a_host(host) or _not_a_name(host)
    return None


def _more_than_a_host(host: str) -> str | None:
    """A URL, a port, or spaces around or inside: what people paste from a browser or a manual."""
    if "://" in host:
        parts = urllib.parse.urlsplit(host)
        port = f", port: {parts.port}" if parts.port else ""
        return f"'{host}' is a URL; write the address alone and the port apart: host: {parts.hostname}{port}"
    glued = GLUED_PORT.match(host)
    if glued is not None:
        return (
            f"'{host}' has the port glued on; write host: {glued['host']}, port: {glued['port']} "
            "(the port has its own key)"
        )
    if any(c.isspace() for c in host):
        return f"'{host}' has a space in it: a host is one IP address or host name, e.g. 10.0.0.5"
    return None


def _not_a_name(host: str) -> str | None:
    labels = host.removesuffix(".").split(".")
    if all(label.isdigit() for label in labels):
        return f"'{host}' is not an IPv4 address: four numbers 0-255, e.g. 10.0.0.5"
    if len(host) > MAX_HOST_NAME or not all(HOST_LABEL.match(label) for label in labels):
        return (
            f"'{host}' is not an IP address or a host name (letters, digits, '-' and '.'; "
            "e.g. 10.0.0.5 or plc-07.plant.local)"
        )
    return None


def _valid_host(host: str) -> str:
    problem = _host_problem(host)
    if problem is not None:
        raise ValueError(problem)
    return host


HostName = Annotated[
    str, Field(min_length=1, description="IP address or host name"), AfterValidator(_valid_host)
]
