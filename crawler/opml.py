"""OPML in and out: feed subscriptions exported by a feed reader -> sources.yaml entries, and back.

sources.yaml is edited by hand, so an import must leave it as the user wrote it: ruamel.yaml's round trip
keeps comments, key order, quoting and indentation, and only new entries are appended. The file is replaced
atomically, so a crash mid-write leaves the old file, never half a new one.
"""

from __future__ import annotations

import io
import os
import re
import stat
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from crawler.config import Source
from crawler.dedup import normalise_url

MAX_NAME = 64  # as config.Source.name allows


class OpmlError(Exception):
    """The OPML file, or the sources file to add to, cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    title: str | None
    xml_url: str
    html_url: str | None = None


def read_opml(data: bytes) -> list[OpmlFeed]:
    """Every feed outline (one with an xmlUrl), folders included, in document order, each URL once."""
    # No entity expansion, no DTD or network access, libxml2's size limits on: an OPML file comes from
    # anywhere, and XXE or billion-laughs documents must not read local files or exhaust memory.
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise OpmlError(f"not an OPML file: {exc}") from None
    if etree.QName(root).localname.lower() != "opml":
        raise OpmlError(f"not an OPML file: the root element is <{etree.QName(root).localname}>")
    feeds: dict[str, OpmlFeed] = {}
    for outline in root.iter("{*}outline"):
        attrs = {key.lower(): value.strip() for key, value in outline.attrib.items() if isinstance(key, str)}
        xml_url = _http_url(attrs.get("xmlurl", ""))
        if xml_url is None:
            continue  # a folder, or a feed at an address we cannot poll
        key = _feed_key(xml_url)
        if key not in feeds:  # the same feed filed in two folders is one subscription
            title = " ".join((attrs.get("title") or attrs.get("text") or "").split()) or None
            feeds[key] = OpmlFeed(title, xml_url, _http_url(attrs.get("htmlurl", "")))
    return list(feeds.values())


def add_to_sources(sources_yaml: Path, feeds: list[OpmlFeed]) -> list[str]:
    """Append the feeds not already in the file (by normalised URL) as `kind: feed` sources; return their
    names. The file's comments, order and formatting are kept; it is not rewritten when nothing is new."""
    text = sources_yaml.read_text(encoding="utf-8") if sources_yaml.exists() else ""
    try:
        yaml = _round_trip(text)
        doc = (yaml.load(text) if text.strip() else None) or CommentedMap()
    except YAMLError as exc:
        raise OpmlError(f"{sources_yaml}: cannot read it as YAML: {exc}") from None
    if not isinstance(doc, CommentedMap):
        raise OpmlError(f"{sources_yaml}: expected a mapping with a `sources:` list at the top level")
    before = _dump(yaml, doc)
    if doc.get("sources") is None:  # no key, or "sources:" with nothing after it
        doc["sources"] = CommentedSeq()
    sources = doc["sources"]
    if not isinstance(sources, CommentedSeq):
        raise OpmlError(f"{sources_yaml}: `sources:` must be a list")
    if sources.fa.flow_style():
        sources.fa.set_block_style()  # `sources: []` grows into a block list like the rest of the file
    known_urls = {_feed_key(str(s["url"])) for s in sources if isinstance(s, dict) and s.get("url")}
    names = {str(s["name"]) for s in sources if isinstance(s, dict) and s.get("name") is not None}
    added: list[str] = []
    for feed in feeds:
        key = _feed_key(feed.xml_url)
        if key in known_urls:
            continue
        name = _unique(_slug(feed.title) or _slug(_host(feed.xml_url)) or "feed", names)
        sources.append(CommentedMap([("name", name), ("url", feed.xml_url), ("kind", "feed")]))
        known_urls.add(key)
        names.add(name)
        added.append(name)
    if added:
        after = _dump(yaml, doc)
        # The round trip still normalises a few things (the spacing before a comment after a flow list, an
        # indentation that differs between levels). When the new dump only adds lines at the end, which is
        # the usual case as `sources:` is the file's only key, the user's text is kept byte for byte and
        # only those lines are appended.
        if after.startswith(before) and text.strip():
            after = text + ("" if text.endswith("\n") else "\n") + after[len(before) :]
        _write_atomic(sources_yaml, after)
    return added


def _round_trip(text: str) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap the user's long lines
    # New entries are indented like the file's; a new file gets "  - name:" under "sources:".
    _data, indent, offset = load_yaml_guess_indent(text) if text.strip() else (None, None, None)
    yaml.indent(mapping=indent or 2, sequence=indent or 4, offset=2 if offset is None else offset)
    return yaml


def _dump(yaml: YAML, doc: CommentedMap) -> str:
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def export_opml(sources: Sequence[Source], title: str) -> bytes:
    """OPML 2.0 listing the `kind: feed` sources (other kinds have no feed address to subscribe to)."""
    opml = etree.Element("opml", version="2.0")
    head = etree.SubElement(opml, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = format_datetime(datetime.now(UTC), usegmt=True)
    body = etree.SubElement(opml, "body")
    for source in sources:
        if source.kind == "feed":
            etree.SubElement(
                body, "outline", type="rss", text=source.name, title=source.name, xmlUrl=source.url
            )
    return etree.tostring(opml, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _http_url(value: str) -> str | None:
    # Some readers export the feed: pseudo-scheme (feed://host/rss, feed:https://host/rss).
    if value.lower().startswith("feed:"):
        rest = value[5:]
        value = rest if rest.lower().startswith(("http://", "https://")) else "http:" + rest
    parts = urlsplit(value)
    return value if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def _feed_key(url: str) -> str:
    # A reader's export often differs from the address in sources.yaml only by http/https, www. or a final
    # slash; subscribing twice would poll the same site twice for nothing.
    parts = urlsplit(normalise_url(url))
    return f"{parts.netloc.removeprefix('www.')}{parts.path.rstrip('/')}?{parts.query}"


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").removeprefix("www.")


def _slug(text: str | None) -> str:
    """A source name from a title or host: ASCII lower case, words joined by "-", at most MAX_NAME long."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:MAX_NAME].rstrip("-")


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = name[: MAX_NAME - len(suffix)].rstrip("-") + suffix
        if candidate not in taken:
            return candidate
        n += 1


def _write_atomic(path: Path, text: str) -> None:
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # mkstemp creates 0600; keep the permissions the file had
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
