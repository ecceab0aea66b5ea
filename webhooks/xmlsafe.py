"""The XML of WeCom and WeChat, read and written without the XML attack surface.

Parsing goes through ``defusedxml`` with DTDs, entities and external references forbidden
(platforms.md §0.6): the platforms never send them, so any DTD is an attack (billion laughs,
XXE) and is refused before expansion. The size limit is checked before the parser sees a byte.
Every failure is one ``BadXml`` (with a ``reason``), never a parser exception, so a view needs
one ``except``.

Writing uses CDATA for text, the way the platforms' own samples do; a ``]]>`` inside the text is
split across two CDATA sections so a resident's message can never close the section early.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeAlias
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree

from webhooks.errors import BadXml

__all__ = ["MAX_DEPTH", "MAX_XML_BYTES", "XmlValue", "build_xml", "cdata", "parse_xml"]

# WeChat/WeCom callbacks are well under 8 KiB; 64 KiB matches the generic channel's body limit.
MAX_XML_BYTES = 64 * 1024
# The deepest real payload is SendPicsInfo > PicList > item > PicMd5Sum (4 below the root).
MAX_DEPTH = 8

XmlValue: TypeAlias = "str | int | Mapping[str, XmlValue]"

_TAG_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
# Characters XML 1.0 cannot carry at all, not even in CDATA (C0 controls, lone surrogates, …).
_NOT_XML_CHAR_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def parse_xml(
    raw: bytes | str, *, root: str = "xml", max_bytes: int = MAX_XML_BYTES
) -> dict[str, str]:
    """Parse a platform XML document into ``{field: text}``; raise BadXml on anything odd.

    Direct children of the root map by tag (``"Content"``); nested leaves by dotted path
    (``"ScanCodeInfo.ScanType"``). A repeated path keeps its first value. Attributes, comments
    and whitespace between elements are ignored; a missing text is ``""``.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if not isinstance(data, bytes | bytearray):
        raise BadXml("not_bytes")
    if len(data) > max_bytes:
        raise BadXml("too_large")
    try:
        tree = defusedxml.ElementTree.fromstring(
            bytes(data), forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DefusedXmlException as exc:  # DTD, entity, external reference
        raise BadXml("dtd_forbidden") from exc
    except (ParseError, ValueError, LookupError) as exc:
        # ValueError/LookupError: an XML declaration naming an encoding expat cannot use.
        raise BadXml("malformed") from exc
    if tree.tag != root:
        raise BadXml("unexpected_root")
    return _flatten(tree)


def _flatten(tree: Element) -> dict[str, str]:
    # Iterative on purpose: a hostile document must not be able to hit the recursion limit.
    fields: dict[str, str] = {}
    stack: list[tuple[Element, str, int]] = [(c, c.tag, 1) for c in reversed(tree)]
    while stack:
        element, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadXml("too_deep")
        if len(element):
            stack.extend((c, f"{path}.{c.tag}", depth + 1) for c in reversed(element))
        else:
            fields.setdefault(path, element.text or "")
    return fields


def cdata(text: str) -> str:
    """``text`` as CDATA that always parses back to the same text (newlines normalized).

    XML parsers turn CR and CRLF into LF even inside CDATA, and cannot carry control
    characters at all, so both are normalized here rather than left to break a reply.
    """
    clean = _NOT_XML_CHAR_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return "<![CDATA[" + clean.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def build_xml(fields: Mapping[str, XmlValue], *, root: str = "xml") -> str:
    """Render a reply: ``str`` values as CDATA, ``int`` values bare, mappings as nested elements.

    Tag names come from our code, never from input: a bad one is a bug (ValueError).
    """
    return _element(root, fields)


def _element(tag: str, value: XmlValue) -> str:
    if not _TAG_RE.fullmatch(tag):
        raise ValueError(f"invalid XML tag name: {tag!r}")
    if isinstance(value, bool):  # bool is an int: refuse rather than render "True"
        raise TypeError(f"XML field {tag!r}: bool is not a valid value")
    if isinstance(value, str):
        body = cdata(value)
    elif isinstance(value, int):
        body = str(value)
    elif isinstance(value, Mapping):
        body = "".join(_element(name, child) for name, child in value.items())
    else:
        raise TypeError(f"XML field {tag!r}: unsupported value type {type(value).__name__}")
    return f"<{tag}>{body}</{tag}>"
