"""OPML import into sources.yaml (keeping the user's file as written) and export of the feed sources."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import yaml
from lxml import etree

from crawler.config import Source, load_config
from crawler.opml import OpmlError, OpmlFeed, add_to_sources, export_opml, read_opml

OPML = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- exported by a feed reader -->
<opml version="2.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="Korea" title="Korea">
      <outline type="rss" text="NK News" title="NK News" xmlUrl="https://www.nknews.org/feed/"
               htmlUrl="https://www.nknews.org/"/>
      <outline text="Deeper folder">
        <outline type="rss" text="38 North: Informed Analysis" xmlUrl="https://www.38north.org/feed/"/>
      </outline>
    </outline>
    <outline text="Latin America">
      <outline type="rss" text="Granma &#8211; &#211;rgano oficial" xmlURL="http://www.granma.cu/feed"/>
      <outline type="rss" text="NK News again" xmlUrl="https://nknews.org/feed"/>
      <outline type="link" text="A web page, not a feed" url="https://example.org/page"/>
      <outline type="rss" text="Old style scheme" xmlUrl="feed://old.example.net/rss.xml"/>
      <outline type="rss" text="Odd scheme" xmlUrl="feed:https://odd.example.net/atom"/>
      <outline type="rss" text="Bad" xmlUrl="javascript:alert(1)"/>
      <outline type="rss" text="Relative" xmlUrl="/feed.xml"/>
      <outline type="rss" title="   " text="" xmlUrl="https://untitled.example.com/rss"/>
    </outline>
    <outline type="rss" text="Top level" xmlUrl="https://top.example.org/index.xml"/>
  </body>
</opml>
"""

FEEDS = [
    OpmlFeed("NK News", "https://www.nknews.org/feed/", "https://www.nknews.org/"),
    OpmlFeed("38 North: Informed Analysis", "https://www.38north.org/feed/"),
    OpmlFeed("Granma – Órgano oficial", "http://www.granma.cu/feed"),
    OpmlFeed("Old style scheme", "http://old.example.net/rss.xml"),
    OpmlFeed("Odd scheme", "https://odd.example.net/atom"),
    OpmlFeed(None, "https://untitled.example.com/rss"),
    OpmlFeed("Top level", "https://top.example.org/index.xml"),
]


# -- reading OPML -----------------------------------------------------------------------------------------


def test_read_opml_nested_folders() -> None:
    # Folders at any depth; an outline with no xmlUrl is no feed; the same feed (with or without www. and
    # a final slash) in two folders counts once; feed:// is http://; other schemes and relative URLs are
    # dropped.
    assert read_opml(OPML) == FEEDS


def test_read_opml_without_head_or_version() -> None:
    data = b"<opml><body><outline xmlUrl='https://a.example.org/rss' text='A'/></body></opml>"
    assert read_opml(data) == [OpmlFeed("A", "https://a.example.org/rss")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"<html><body>Not OPML</body></html>", "the root element is <html>", id="html"),
        pytest.param(b"<rss version='2.0'><channel/></rss>", "the root element is <rss>", id="rss"),
        pytest.param(b"", "not an OPML file", id="empty"),
        pytest.param(b"<opml><body><outline", "not an OPML file", id="truncated"),
        pytest.param(b"\x00\x01binary", "not an OPML file", id="binary"),
    ],
)
def test_not_opml(data: bytes, message: str) -> None:
    with pytest.raises(OpmlError, match=r"^not an OPML file") as err:
        read_opml(data)
    assert message in str(err.value)


def test_opml_external_entity_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("https://TOP-SECRET.example/", encoding="utf-8")
    data = f"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY xxe SYSTEM "file://{secret}">]>
<opml version="2.0"><body><outline text="&xxe;" xmlUrl="https://a.example.org/rss"/>
<outline text="x" xmlUrl="&xxe;"/></body></opml>""".encode()
    try:
        feeds = read_opml(data)
    except OpmlError as exc:
        assert "TOP-SECRET" not in str(exc)
    else:
        assert "TOP-SECRET" not in repr(feeds)


def test_opml_billion_laughs_is_refused() -> None:
    entities = '<!ENTITY l0 "lollollollol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )
    data = (
        f'<?xml version="1.0"?><!DOCTYPE opml [{entities}]><opml><body><outline text="&l9;"/></body></opml>'
    )
    with pytest.raises(OpmlError, match=r"^not an OPML file"):
        read_opml(data.encode())


# -- adding to sources.yaml -------------------------------------------------------------------------------

# Written the way a person writes it: comments everywhere, a dash indented under `sources:`, a nested mapping
# indented differently, flow lists, quotes that are not needed, extra spaces before a comment.
SOURCES = """\
# The sources to monitor.
#   kind: feed, listing, sitemap or auto

sources:
  # DPRK watchers
  - name: nknews
    url: https://www.nknews.org/feed/
    every: 1h   # busy site
  - name: 'mfa-dprk'
    url: "http://www.mfa.gov.kp/en/"
    kind: listing
    links:
      allow: ['mfa\\.gov\\.kp/en/[^/?#]+/?$']   # article pages sit right under /en/
      deny: ['/en/(category|tag|page)']

  # Latin America
  - name: granma-organo-oficial
    url: https://granma.cu/feed/
    every: 2h
"""


def config_dir(tmp_path: Path, sources: str = SOURCES) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "crawler.yaml").write_text("timezone: UTC\n", encoding="utf-8")
    (folder / "sources.yaml").write_text(sources, encoding="utf-8")
    return folder


def test_import_appends_and_keeps_the_file_as_written(tmp_path: Path) -> None:
    folder = config_dir(tmp_path)
    path = folder / "sources.yaml"
    added = add_to_sources(path, FEEDS)
    # nknews is there as https://www.nknews.org/feed/, Granma as https://granma.cu/feed/ (no www., https)
    assert added == [
        "38-north-informed-analysis",
        "old-style-scheme",
        "odd-scheme",
        "untitled-example-com",
        "top-level",
    ]
    text = path.read_text(encoding="utf-8")
    assert text.startswith(SOURCES)  # every byte of the user's file, comments and spacing included
    assert text[len(SOURCES) :] == (
        "  - name: 38-north-informed-analysis\n"
        "    url: https://www.38north.org/feed/\n"
        "    kind: feed\n"
        "  - name: old-style-scheme\n"
        "    url: http://old.example.net/rss.xml\n"
        "    kind: feed\n"
        "  - name: odd-scheme\n"
        "    url: https://odd.example.net/atom\n"
        "    kind: feed\n"
        "  - name: untitled-example-com\n"
        "    url: https://untitled.example.com/rss\n"
        "    kind: feed\n"
        "  - name: top-level\n"
        "    url: https://top.example.org/index.xml\n"
        "    kind: feed\n"
    )
    config = load_config(folder)  # the crawler's own loader accepts the result
    assert [s.name for s in config.sources][:3] == ["nknews", "mfa-dprk", "granma-organo-oficial"]
    assert {s.kind for s in config.sources[3:]} == {"feed"}


def test_import_again_adds_nothing_and_does_not_rewrite(tmp_path: Path) -> None:
    path = config_dir(tmp_path) / "sources.yaml"
    add_to_sources(path, FEEDS)
    before = path.stat()
    text = path.read_text(encoding="utf-8")
    assert add_to_sources(path, FEEDS) == []
    assert path.read_text(encoding="utf-8") == text
    assert path.stat().st_ino == before.st_ino  # not replaced


def test_trailing_comment_and_missing_newline_kept(tmp_path: Path) -> None:
    original = "sources:\n- name: a\n  url: https://a.example.org/rss\n# the end of the list\n# really"
    path = config_dir(tmp_path, original) / "sources.yaml"
    assert add_to_sources(path, [OpmlFeed("B", "https://b.example.org/rss")]) == ["b"]
    text = path.read_text(encoding="utf-8")
    assert text.startswith(original + "\n")
    assert text.endswith("- name: b\n  url: https://b.example.org/rss\n  kind: feed\n")  # the file's indent
    assert yaml.safe_load(text)["sources"][1] == {
        "name": "b",
        "url": "https://b.example.org/rss",
        "kind": "feed",
    }


def test_names_are_unique_slugs(tmp_path: Path) -> None:
    path = config_dir(tmp_path) / "sources.yaml"
    long_title = "The Very Long Name of a Newspaper " * 4
    feeds = [
        OpmlFeed("NK News", "https://other.example.org/nk"),  # the name nknews is taken: nk-news is free
        OpmlFeed("nknews", "https://other.example.org/nk2"),
        OpmlFeed("nknews", "https://other.example.org/nk3"),
        OpmlFeed("Новости Кубы", "https://www.cuba-news.example/rss"),  # no Latin letters: from the host
        OpmlFeed("¡Café & Política!", "https://cafe.example.org/rss"),
        OpmlFeed(long_title, "https://long.example.org/rss"),
        OpmlFeed(long_title, "https://long.example.org/rss2"),
        OpmlFeed("---", "https://dashes.example.org/rss"),
    ]
    names = add_to_sources(path, feeds)
    assert names[:5] == ["nk-news", "nknews-2", "nknews-3", "cuba-news-example", "cafe-politica"]
    assert names[5] == "the-very-long-name-of-a-newspaper-the-very-long-name-of-a-newspa"
    assert names[6] == "the-very-long-name-of-a-newspaper-the-very-long-name-of-a-news-2"
    assert names[7] == "dashes-example-org"
    assert all(len(n) <= 64 for n in names)
    load_config(path.parent)  # names valid and unique for the crawler


def test_new_or_empty_sources_file(tmp_path: Path) -> None:
    folder = tmp_path / "cfg"
    folder.mkdir()
    for content in (None, "", "sources: []\n", "# nothing yet\nsources:\n"):
        path = folder / "sources.yaml"
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(content, encoding="utf-8")
        assert add_to_sources(path, [OpmlFeed("A", "https://a.example.org/rss")]) == ["a"]
        text = path.read_text(encoding="utf-8")
        assert yaml.safe_load(text) == {
            "sources": [{"name": "a", "url": "https://a.example.org/rss", "kind": "feed"}]
        }
        assert "  - name: a\n" in text  # a block list, indented like the shipped config
        if content and content.startswith("#"):
            assert text.startswith("# nothing yet\n")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("- just\n- a list\n", "expected a mapping", id="list"),
        pytest.param("sources: {a: 1}\n", "`sources:` must be a list", id="sources-mapping"),
        pytest.param("sources:\n  - name: a\n   bad: indent\n", "cannot read it as YAML", id="yaml-error"),
        pytest.param("sources: []\nsources: []\n", "cannot read it as YAML", id="duplicate-key"),
    ],
)
def test_unusable_sources_file(tmp_path: Path, content: str, message: str) -> None:
    path = config_dir(tmp_path, content) / "sources.yaml"
    with pytest.raises(OpmlError, match=message):
        add_to_sources(path, [OpmlFeed("A", "https://a.example.org/rss")])
    assert path.read_text(encoding="utf-8") == content


def test_write_is_atomic_and_keeps_permissions(tmp_path: Path) -> None:
    folder = config_dir(tmp_path)
    path = folder / "sources.yaml"
    os.chmod(path, 0o640)
    add_to_sources(path, [OpmlFeed("A", "https://a.example.org/rss")])
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in folder.iterdir()) == ["crawler.yaml", "sources.yaml"]  # no temp file left


def test_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    # A disk that fills up half-way through the write, made real (even for root) with a file size limit, in
    # a child process so the limit and the ignored SIGXFSZ touch nothing else.
    folder = config_dir(tmp_path)
    path = folder / "sources.yaml"
    script = f"""
import resource, signal
from pathlib import Path
from crawler.opml import OpmlFeed, add_to_sources
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({len(SOURCES) + 20}, resource.RLIM_INFINITY))
try:
    add_to_sources(Path({str(path)!r}), [OpmlFeed("A", "https://a.example.org/rss")])
except OSError as exc:
    print("failed:", exc.strerror)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "failed: File too large", done.stderr
    assert path.read_text(encoding="utf-8") == SOURCES
    assert sorted(p.name for p in folder.iterdir()) == ["crawler.yaml", "sources.yaml"]  # temp file removed


# -- export -----------------------------------------------------------------------------------------------

SOURCE_LIST = [
    Source(name="nknews", url="https://www.nknews.org/feed/"),
    Source(name="mfa-dprk", url="http://www.mfa.gov.kp/en/", kind="listing"),
    Source(name="query-feed", url="https://q.example.org/rss?cat=1&lang=en", kind="feed", enabled=False),
    Source(name="site-map", url="https://news.example.org/sitemap.xml", kind="sitemap"),
    Source(name="home", url="https://home.example.org/", kind="auto"),
]


def test_export_opml() -> None:
    data = export_opml(SOURCE_LIST, "Crawler & co. sources")
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(data)
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "Crawler & co. sources"
    assert parsedate_to_datetime(root.findtext("head/dateCreated") or "").tzinfo is not None
    outlines = root.findall("body/outline")
    assert [(o.get("text"), o.get("type"), o.get("xmlUrl")) for o in outlines] == [
        ("nknews", "rss", "https://www.nknews.org/feed/"),
        ("query-feed", "rss", "https://q.example.org/rss?cat=1&lang=en"),  # escaped in the file, intact here
    ]
    assert b"cat=1&amp;lang=en" in data


def test_export_then_import_round_trip(tmp_path: Path) -> None:
    feeds = read_opml(export_opml(SOURCE_LIST, "x"))
    assert feeds == [
        OpmlFeed("nknews", "https://www.nknews.org/feed/"),
        OpmlFeed("query-feed", "https://q.example.org/rss?cat=1&lang=en"),
    ]
    path = tmp_path / "sources.yaml"
    assert add_to_sources(path, feeds) == ["nknews", "query-feed"]
    assert add_to_sources(path, read_opml(export_opml(SOURCE_LIST, "x"))) == []
