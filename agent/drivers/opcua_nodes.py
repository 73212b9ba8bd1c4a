"""OPC UA node addresses as the configuration writes them, resolved against a server's namespaces.

Namespace indexes can change when a server restarts; namespace URIs do not. So configurations
name namespaces by URI (`nsu=<uri>;s=...`) or by an alias the profile maps to a URI
(`machinery:MachineryBuildingBlocks`), and indexes are looked up after every connect.
"""

from __future__ import annotations

from collections.abc import Mapping

from asyncua import ua


class NodeAddressError(ValueError):
    """A node id or browse path that does not fit this server (unknown namespace, bad syntax)."""


def parse_node_id(text: str, namespaces: Mapping[str, int]) -> ua.NodeId:
    """`ns=2;s=X`, `i=2258`, or `nsu=<uri>;s=X` with the URI looked up in `namespaces` (uri -> index)."""
    if text.startswith("nsu="):
        uri, separator, rest = text[4:].partition(";")
        if not separator:
            raise NodeAddressError(f"'{text}': expected nsu=<namespace uri>;<i|s|g|b>=<identifier>")
        if uri not in namespaces:
            raise NodeAddressError(f"'{text}': the server has no namespace '{uri}'")
        text = f"ns={namespaces[uri]};{rest}"
    try:
        return ua.NodeId.from_string(text)
    except (ValueError, ua.UaStringParsingError) as error:
        raise NodeAddressError(f"'{text}': {error}") from None


def path_segments(
    path: str, aliases: Mapping[str, str], namespaces: Mapping[str, int]
) -> list[tuple[int, str]]:
    """`alias:Name/alias:Name/Name` as (namespace index, browse name) pairs; a bare name is namespace 0."""
    segments = []
    for segment in path.split("/"):
        alias, _, name = segment.rpartition(":")
        if not alias:
            segments.append((0, name))
            continue
        uri = aliases.get(alias)
        if uri is None:
            raise NodeAddressError(f"'{path}': unknown namespace alias '{alias}'")
        if uri not in namespaces:
            raise NodeAddressError(f"'{path}': the server has no namespace '{uri}' ('{alias}')")
        segments.append((namespaces[uri], name))
    return segments


def relative_path(segments: list[tuple[int, str]]) -> ua.RelativePath:
    """A browse path following hierarchical references (and their subtypes) by browse name."""
    elements = []
    for namespace, name in segments:
        element = ua.RelativePathElement()
        element.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
        element.IsInverse = False
        element.IncludeSubtypes = True
        element.TargetName = ua.QualifiedName(name, namespace)
        elements.append(element)
    relative = ua.RelativePath()
    relative.Elements = elements
    return relative
