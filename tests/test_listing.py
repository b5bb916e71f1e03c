"""The listing stage: index pages without a feed -> article links, by a rule or by the default rule."""

from __future__ import annotations

import gzip
import json
from urllib.parse import urlsplit

import pytest
from conftest import CORPORA

from crawler.config import LinkRule
from crawler.listing import ListingError, parse_listing
from crawler.models import FeedItem

MFA_URL = "http://www.mfa.gov.kp/en/"

# A foreign-ministry-style front page: a menu, a list of dated headlines (the articles), a "More From" sidebar
# and a footer. Links are relative, one headline is linked twice (picture and title), and the <base> sits in a
# subfolder the way some CMSs set it.
MFA_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Ministry of Foreign Affairs</title>
<base href="http://www.mfa.gov.kp/en/"></head>
<body>
<header><nav class="menu">
  <a href="/en/">Home</a> <a href="about/">About the Ministry</a> <a href="category/press/">Press</a>
  <a href="category/statements/">Statements</a> <a href="contact/">Contact</a>
</nav></header>
<main>
  <div class="news-list">
    <h2>Latest News</h2>
    <ul>
      <li><span class="date">2024-03-05</span>
        <a href="kim-meets-venezuelan-delegation/"><img src="/img/1.jpg" alt=""></a>
        <a href="kim-meets-venezuelan-delegation/">
          Kim Meets   Venezuelan
          Delegation</a></li>
      <li><span class="date">2024-03-04</span>
        <a href="statement-on-us-sanctions/#comments">Statement on U.S. Sanctions</a></li>
      <li><span class="date">2024-03-03</span>
        <a href="http://www.mfa.gov.kp/en/cuba-solidarity-meeting/">Cuba Solidarity Meeting</a></li>
      <li><span class="date">2024-03-02</span>
        <a href="javascript:void(0)">Print</a> <a href="mailto:info@mfa.gov.kp">Mail</a></li>
    </ul>
    <div class="pager"><a href="page/2/">Next page</a></div>
  </div>
</main>
<aside class="sidebar"><h3>More From</h3><ul>
  <li><a href="multipolar-world-forum/">Multipolar World Forum</a></li>
  <li><a href="kim-meets-venezuelan-delegation/">Kim Meets Venezuelan Delegation</a></li>
</ul></aside>
<footer><a href="privacy/">Privacy</a> <a href="https://www.facebook.com/mfa">Facebook</a></footer>
</body></html>"""

HEADLINES = [
    FeedItem(
        url="http://www.mfa.gov.kp/en/kim-meets-venezuelan-delegation/",
        title="Kim Meets Venezuelan Delegation",
    ),
    FeedItem(url="http://www.mfa.gov.kp/en/statement-on-us-sanctions/", title="Statement on U.S. Sanctions"),
    FeedItem(url="http://www.mfa.gov.kp/en/cuba-solidarity-meeting/", title="Cuba Solidarity Meeting"),
]


def listing(rule: LinkRule | None, page: str = MFA_PAGE, url: str = MFA_URL) -> list[FeedItem]:
    return parse_listing(page.encode("utf-8"), url, rule, "text/html; charset=utf-8")


# -- rules: selectors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param(LinkRule(css="div.news-list li"), id="css-containers"),
        pytest.param(LinkRule(css="div.news-list li a"), id="css-links"),
        pytest.param(LinkRule(css="div.news-list ul"), id="css-one-container"),
        pytest.param(LinkRule(xpath="//div[@class='news-list']//li"), id="xpath-containers"),
        pytest.param(LinkRule(xpath="//div[@class='news-list']//li/a"), id="xpath-links"),
    ],
)
def test_rule_selects_headlines_only(rule: LinkRule) -> None:
    # Menus, the pager, the sidebar and the footer are outside the selection; the picture link and the
    # headline link of the first story are one item, titled by the headline; the fragment is dropped.
    assert listing(rule) == HEADLINES


def test_xpath_selecting_hrefs_gives_untitled_links() -> None:
    rule = LinkRule(xpath="//div[@class='news-list']//li/a/@href")
    assert listing(rule) == [FeedItem(url=i.url) for i in HEADLINES]


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param(LinkRule(xpath="//div[@class='news-list']//li/a/text()"), id="xpath-text"),
        pytest.param(LinkRule(xpath="count(//a)"), id="xpath-number"),
    ],
)
def test_selected_text_is_not_read_as_addresses(rule: LinkRule) -> None:
    # Headlines such as "Print" would otherwise become http://www.mfa.gov.kp/en/Print.
    assert listing(rule) == []


def test_element_inside_a_link_takes_the_enclosing_link() -> None:
    page = """<html><body><div class="teasers">
      <a href="/en/a-first-story"><div class="card"><h3>First story</h3><p>Its summary.</p></div></a>
      <a href="/en/a-second-story"><div class="card"><h3>Second story</h3></div></a>
    </div></body></html>"""
    assert listing(LinkRule(css="div.teasers h3"), page) == [
        FeedItem(url="http://www.mfa.gov.kp/en/a-first-story", title="First story"),
        FeedItem(url="http://www.mfa.gov.kp/en/a-second-story", title="Second story"),
    ]


def test_sidebar_rule_keeps_page_order_and_titles() -> None:
    assert listing(LinkRule(css="aside.sidebar li")) == [
        FeedItem(url="http://www.mfa.gov.kp/en/multipolar-world-forum/", title="Multipolar World Forum"),
        FeedItem(url="http://www.mfa.gov.kp/en/kim-meets-venezuelan-delegation/", title=HEADLINES[0].title),
    ]


def test_image_only_link_titled_by_alt_or_title_attribute() -> None:
    page = """<html><body><ul class="n">
      <li><a href="/en/story-one"><img src="a.jpg" alt="Story one in pictures"></a></li>
      <li><a href="/en/story-two" title="Story two"><img src="b.jpg"></a></li>
      <li><a href="/en/story-three"><img src="c.jpg"></a></li>
    </ul></body></html>"""
    assert [(i.url.rsplit("/", 1)[1], i.title) for i in listing(LinkRule(css="ul.n a"), page)] == [
        ("story-one", "Story one in pictures"),
        ("story-two", "Story two"),
        ("story-three", None),
    ]


def test_title_leaves_out_scripts_and_styles() -> None:
    page = """<html><body><ul class="n"><li><a href="/en/story"><script type="application/ld+json">
      {"@context": "https://schema.org", "@type": "ImageObject"}</script><style>.x{color:red}</style>
      Kim<b>’s</b> visit</a></li></ul></body></html>"""
    assert listing(LinkRule(css="ul.n"), page)[0].title == "Kim’s visit"


@pytest.mark.parametrize("xpath", ["//x:a", "foo(//a)", "//a[position() = $n]"])
def test_xpath_that_cannot_run_is_a_clear_error(xpath: str) -> None:
    with pytest.raises(ListingError, match=r"^links: the selector .* cannot be evaluated: "):
        listing(LinkRule(xpath=xpath))


def test_selector_matching_nothing_gives_no_items() -> None:
    assert listing(LinkRule(css="div.does-not-exist a")) == []


# -- rules: allow and deny --------------------------------------------------------------------------------


def test_allow_and_deny_on_absolute_urls() -> None:
    # Without a selector every link is a candidate; allow (any) and deny (none) search the absolute URL.
    rule = LinkRule(
        allow=(r"mfa\.gov\.kp/en/[^/?#]+/$", r"facebook\.com"), deny=(r"/en/(category|page|about)/",)
    )
    assert [i.url for i in listing(rule)] == [
        "http://www.mfa.gov.kp/en/contact/",  # allowed: the rule says so, the default heuristics are off
        "http://www.mfa.gov.kp/en/kim-meets-venezuelan-delegation/",
        "http://www.mfa.gov.kp/en/statement-on-us-sanctions/",
        "http://www.mfa.gov.kp/en/cuba-solidarity-meeting/",
        "http://www.mfa.gov.kp/en/multipolar-world-forum/",
        "http://www.mfa.gov.kp/en/privacy/",
        "https://www.facebook.com/mfa",
    ]


def test_deny_only_refines_the_default_rule() -> None:
    rule = LinkRule(deny=(r"multipolar",))
    assert [i.url for i in listing(rule)] == [i.url for i in HEADLINES]


def test_selector_then_allow() -> None:
    rule = LinkRule(css="div.news-list li, aside.sidebar li", allow=(r"(kim|forum)",))
    assert [i.url for i in listing(rule)] == [
        "http://www.mfa.gov.kp/en/kim-meets-venezuelan-delegation/",
        "http://www.mfa.gov.kp/en/multipolar-world-forum/",
    ]


# -- the default rule -------------------------------------------------------------------------------------


def test_default_rule_on_ministry_page() -> None:
    # The headlines and the sidebar's story; not the menu, the category pages, the pager, the page itself,
    # the footer, other sites, or javascript:/mailto: links.
    assert listing(None) == [
        *HEADLINES,
        FeedItem(url="http://www.mfa.gov.kp/en/multipolar-world-forum/", title="Multipolar World Forum"),
    ]


NEWS_URL = "https://www.news.example.org/"
NEWS_HOME = """<html><head><title>Example News</title></head><body>
<div class="top"><a href="/">Example News</a> <a href="/world/">World</a> <a href="/login">Sign in</a></div>
<a href="/2024/03/05/caracas-summit/">dated path</a>
<a href="/world/europe">two segments</a>
<a href="/en/world">language prefix is not depth</a>
<a href="/kim-jong-un-meets-maduro-in-pyongyang">long slug</a>
<a href="/news-20240305">date in a slug</a>
<a href="/123456">number</a>
<a href="/index.php?p=4567">query id</a>
<a href="/article.aspx?articleId=991">query id, named</a>
<a href="/politics">one short segment</a>
<a href="/tag/venezuela">tag</a>
<a href="/category/world/latin-america">category</a>
<a href="/author/jane-doe-smith">author</a>
<a href="/es/etiqueta/cuba-y-venezuela">spanish tag</a>
<a href="/search?q=dprk">search</a>
<a href="/world/?page=2">pagination</a>
<a href="/about-us/our-team">about</a>
<a href="/privacy-policy/full-text">privacy</a>
<a href="/files/2024/03/annual-report-2024.pdf">a pdf</a>
<a href="/images/2024/03/photo-of-summit.jpg">an image</a>
<a href="/world/index.html">section front page</a>
<a href="https://news.example.org/2024/03/06/no-www/">same site without www</a>
<a href="https://video.news.example.org/clips/summit-in-caracas">subdomain</a>
<a href="https://elsewhere.example.com/2024/03/05/other-site/">other site</a>
<a href="https://www.news.example.org/#top">the page itself</a>
<nav><a href="/world/asia">in a nav</a></nav>
<div role="navigation"><a href="/world/africa">in a role=navigation</a></div>
<footer><a href="/2024/01/01/footer-story/">page footer</a></footer>
<article><h2><a href="/world/teaser-story-one">Teaser</a></h2>
  <footer><a href="/world/teaser-story-one#more">Read more</a></footer></article>
</body></html>"""


def test_default_rule_picks_article_looking_links() -> None:
    assert [i.title for i in listing(None, NEWS_HOME, NEWS_URL)] == [
        "dated path",
        "two segments",
        "long slug",
        "date in a slug",
        "number",
        "query id",
        "query id, named",
        "same site without www",
        "subdomain",
        "Teaser",
    ]


# -- addresses and decoding -------------------------------------------------------------------------------


def test_relative_links_without_base_resolve_against_page_url() -> None:
    page = """<html><body><ul class="n"><li><a href="../world/story-one">x</a></li>
      <li><a href="//cdn.example.net/story-two">y</a></li><li><a href="?id=3">z</a></li></ul></body></html>"""
    assert [
        i.url for i in listing(LinkRule(css="ul.n"), page, "https://news.example.org/en/latest/index.html")
    ] == [
        "https://news.example.org/en/world/story-one",
        "https://cdn.example.net/story-two",
        "https://news.example.org/en/latest/index.html?id=3",
    ]


def test_non_http_schemes_and_empty_hrefs_dropped() -> None:
    page = """<html><body><ul class="n">
      <li><a href="">empty</a></li><li><a href="#top">anchor</a></li><li><a href="tel:+850123">tel</a></li>
      <li><a href="ftp://files.example.org/x">ftp</a></li><li><a href="data:text/html,hi">data</a></li>
      <li><a href="  https://news.example.org/kept  ">kept</a></li><li><a>no href</a></li>
      <li><a href="http://[::1">bad ipv6</a></li>
    </ul></body></html>"""
    assert listing(LinkRule(css="ul.n a"), page) == [
        FeedItem(url="https://news.example.org/kept", title="kept")
    ]


@pytest.mark.parametrize(
    ("encoding", "content_type", "meta"),
    [
        pytest.param("cp1251", "text/html; charset=windows-1251", "", id="header"),
        pytest.param("cp1251", "text/html", '<meta charset="windows-1251">', id="meta"),
        pytest.param("utf-8", None, "", id="utf8-sniffed"),
    ],
)
def test_encodings(encoding: str, content_type: str | None, meta: str) -> None:
    title = "Пхеньян и Каракас: переговоры"
    page = (
        f'<html><head>{meta}</head><body><ul class="n"><li><a href="/s">{title}</a></li></ul></body></html>'
    )
    (item,) = parse_listing(
        page.encode(encoding), "https://ru.example.org/", LinkRule(css="ul.n"), content_type
    )
    assert item.title == title


def test_not_html_gives_no_items() -> None:
    assert parse_listing(b"", MFA_URL, None) == []
    assert parse_listing(bytes(range(256)), MFA_URL, None) == []
    assert parse_listing(b'{"json": true}', MFA_URL, LinkRule(css="a"), "application/json") == []


# -- real pages -------------------------------------------------------------------------------------------


def test_default_rule_on_real_pages_keeps_its_promises() -> None:
    folder = CORPORA / "fundus"
    if not (folder / "ground-truth.json").exists():
        pytest.skip(f"corpus absent: {folder}")
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    found = 0
    for page_id in sorted(truth)[:25]:
        url = truth[page_id]["url"]
        body = gzip.decompress((folder / "html" / f"{page_id}.html.gz").read_bytes())
        items = parse_listing(body, url, None)
        links = [i.url for i in items]
        assert len(links) == len(set(links)), page_id
        site = (urlsplit(url).hostname or "").removeprefix("www.")
        for link in links:
            parts = urlsplit(link)
            assert parts.scheme in ("http", "https") and not parts.fragment, link
            host = (parts.hostname or "").removeprefix("www.")
            assert host == site or host.endswith("." + site) or site.endswith("." + host), link
            assert link.rstrip("/") != url.split("#")[0].rstrip("/"), link
        found += len(items)
    assert found > 100  # article pages link to other articles: the rule finds them


def test_a_windows_1251_index_page_without_a_charset_gives_readable_titles() -> None:
    titles = ["Визит делегации КНДР в Каракас", "Заявление МИД о санкциях США"]
    items = "".join(f'<li><a href="/news/{i}.html">{t}</a></li>' for i, t in enumerate(titles))
    page = f"<html><body><main><ul>{items}</ul></main></body></html>".encode("cp1251")
    found = parse_listing(page, "http://example.ru/", LinkRule(css="main a"), "text/html")
    assert [item.title for item in found] == titles
