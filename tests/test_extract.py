"""The extraction stage: a page -> an Article in the seed format, with the real trafilatura."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
import trafilatura
from conftest import CHECK_ARCHIVE, CORPORA, article_html, lorem, need_shared

from crawler.archive import write_item
from crawler.charset import decode_html
from crawler.config import Settings
from crawler.dedup import url_digest
from crawler.extract import extract_article

URL = "https://news.example.org/world/kim-maduro"
TITLE = "Kim meets Maduro in Caracas"
BENCHMARK = CORPORA / "article-extraction-benchmark"
BENCHMARK_PAGES = 6


# -- what the design relies on in trafilatura ---------------------------------------------------------------


def test_trafilatura_txt_blocks_are_separated_by_one_newline() -> None:
    paragraphs = lorem("Venezuela", 4)
    text = trafilatura.extract(article_html(TITLE, paragraphs), output_format="txt", include_comments=False)
    assert text == "\n".join(paragraphs)


def test_trafilatura_leaves_the_title_out_of_the_text() -> None:
    # The <h1> is inside <article> but outside the body <div>: it is the title, not a block of the text.
    doc = trafilatura.bare_extraction(article_html(TITLE, lorem("Cuba", 3)), with_metadata=True)
    assert doc is not None
    assert doc.title == TITLE  # " | Test News" (the site name in <title>) is dropped
    assert TITLE not in doc.text
    assert doc.text.split("\n")[0].startswith("Paragraph 1 about Cuba")


# -- extract_article ----------------------------------------------------------------------------------------


def test_extract_article_yields_paragraphs_title_language() -> None:
    paragraphs = lorem("Venezuela", 4)
    article = extract_article(article_html(TITLE, paragraphs).encode("utf-8"), URL)
    assert article is not None
    assert article.title == TITLE
    assert article.paragraphs == tuple(paragraphs)
    assert article.language == "en"
    assert article.body == "\n\n".join(paragraphs)
    # None of the page furniture.
    for furniture in ("Home", "About us", "Most read", "Another headline", "Copyright"):
        assert furniture not in article.text


def test_article_text_is_in_seed_format() -> None:
    paragraphs = lorem("Nicaragua", 3)
    article = extract_article(article_html(TITLE, paragraphs).encode("utf-8"), URL)
    assert article is not None
    text = article.text
    assert text == f"{TITLE}\n\n" + "\n\n".join(paragraphs)
    lines = text.split("\n")
    assert lines[0] == TITLE and lines[1] == ""
    assert lines[2::2] == paragraphs and all(line == "" for line in lines[3::2])
    assert not text.endswith("\n") and "\n\n\n" not in text and "\r" not in text
    assert unicodedata.normalize("NFC", text) == text


def test_text_is_nfc_and_language_from_html_lang() -> None:
    decomposed = unicodedata.normalize(
        "NFD",
        "Nicolás Maduro habló en Bogotá sobre la cooperación Sur-Sur y el comercio con la región andina.",
    )
    paragraphs = [decomposed, *lorem("Colombia", 2)]
    html = article_html("Declaración de Bogotá", paragraphs, lang="es-CO")
    article = extract_article(html.encode("utf-8"), URL)
    assert article is not None
    assert article.paragraphs[0] == unicodedata.normalize("NFC", decomposed)
    assert article.paragraphs[0] != decomposed
    assert unicodedata.normalize("NFC", article.text) == article.text
    assert article.language == "es"


@pytest.mark.parametrize(
    "invisible",
    [
        pytest.param("\u200b", id="zero-width-space"),
        pytest.param("\u200c", id="zero-width-non-joiner"),
        pytest.param("\u200d", id="zero-width-joiner"),
        pytest.param("\u2060", id="word-joiner"),
        pytest.param("\ufeff", id="bom"),
        pytest.param("\x80", id="c1-control-80"),
        pytest.param("\x9f", id="c1-control"),
        pytest.param(
            "\x07",
            id="c0-bell",
        ),
        pytest.param(
            "\x0c",
            id="c0-form-feed",
        ),
    ],
)
def test_invisible_characters_removed(invisible: str) -> None:
    dirty = f"Zero{invisible}width marks{invisible} crept into this paragraph about Havana and Caracas talks."
    paragraphs = [dirty, *lorem("Cuba", 3)]
    article = extract_article(article_html(f"Cuba{invisible} talks", paragraphs).encode("utf-8"), URL)
    assert article is not None
    assert (
        article.paragraphs[0] == "Zerowidth marks crept into this paragraph about Havana and Caracas talks."
    )
    assert article.title == "Cuba talks"
    assert invisible not in article.text


def test_leading_paragraph_equal_to_title_dropped() -> None:
    paragraphs = lorem("Cuba", 3)
    article = extract_article(article_html(TITLE, [TITLE, *paragraphs]).encode("utf-8"), URL)
    assert article is not None
    assert article.paragraphs == tuple(paragraphs)
    assert article.text.split("\n")[2] != TITLE


def test_repeated_paragraph_in_a_row_kept_once() -> None:
    paragraphs = lorem("Cuba", 3)
    article = extract_article(article_html(TITLE, [paragraphs[0], *paragraphs]).encode("utf-8"), URL)
    assert article is not None
    assert article.paragraphs == tuple(paragraphs)


def test_title_falls_back_when_page_has_none() -> None:
    paragraphs = lorem("Managua", 3)
    html = (
        "<html><body><div class='article-body'>"
        + "".join(f"<p>{p}</p>" for p in paragraphs)
        + "</div></body></html>"
    )
    article = extract_article(html.encode("utf-8"), URL, fallback_title="  Feed  title\u200b of the story ")
    assert article is not None
    assert article.title == "Feed title of the story"
    assert article.paragraphs == tuple(paragraphs)


def test_canonical_url_read_from_page() -> None:
    html = article_html(TITLE, lorem("Cuba", 3)).replace(
        "<head>", '<head><link rel="canonical" href="https://news.example.org/canonical/kim-maduro">'
    )
    article = extract_article(html.encode("utf-8"), URL + "?amp=1")
    assert article is not None
    assert article.canonical_url == "https://news.example.org/canonical/kim-maduro"


NAV_ONLY = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Test News</title></head><body>
<header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/about">About us</a></nav></header>
<footer><p>Copyright Test News. All rights reserved.</p></footer></body></html>"""
MENU_ONLY = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Test News</title></head>
<body><nav><ul><li><a href="/a">Politics</a></li><li><a href="/b">Economy</a></li>
<li><a href="/c">Sport</a></li></ul></nav></body></html>"""


@pytest.mark.parametrize(
    "html",
    [
        pytest.param(
            "<!DOCTYPE html><html lang='en'><head><title>Nothing</title></head><body></body></html>",
            id="empty-body",
        ),
        pytest.param("", id="empty"),
        pytest.param("   \n  ", id="blank"),
    ],
)
def test_page_without_text_gives_none(html: str) -> None:
    assert extract_article(html.encode("utf-8"), URL) is None


@pytest.mark.parametrize(
    "html", [pytest.param(NAV_ONLY, id="nav-and-footer"), pytest.param(MENU_ONLY, id="menu")]
)
def test_navigation_page_is_below_the_article_minimum(html: str) -> None:
    # trafilatura returns a menu's links as text; the pipeline refuses so little text as "no article text".
    article = extract_article(html.encode("utf-8"), URL)
    assert article is None or len(article.body) < Settings().min_chars


def test_link_blocks_are_not_article_text() -> None:
    # Teasers of other stories sit among the paragraphs, made of link text only; prose with inline links and
    # a reference shown as its URL stay.
    paragraphs = lorem("Caracas", 4)
    inline = (
        'The <a href="/report">ministry\'s report</a> says the talks in Caracas went on until late on '
        "Tuesday evening, and both delegations agreed to meet again next month."
    )
    body = (
        f"<p>{paragraphs[0]}</p><p>{inline}</p>"
        '<p><a href="/other/1">Ports <b>Harbour strike ends after three weeks of talks</b></a></p>'
        f"<p>{paragraphs[1]}</p><p>{paragraphs[2]}</p>"
        '<p><a href="https://example.org/source-document">https://example.org/source-document</a></p>'
        f"<p>{paragraphs[3]}</p>"
        '<ul><li><a href="/other/2">Drought hits the grain harvest in the south</a></li>'
        '<li><a href="/other/3">Railway workers vote on a new wage offer</a></li></ul>'
    )
    html = article_html(TITLE, ["PLACEHOLDER"]).replace("<p>PLACEHOLDER</p>", body)
    article = extract_article(html.encode("utf-8"), URL)
    assert article is not None
    inline_text = "The ministry's report says the talks in Caracas went on until late on Tuesday evening, "
    assert article.paragraphs == (
        paragraphs[0],
        inline_text + "and both delegations agreed to meet again next month.",
        paragraphs[1],
        paragraphs[2],
        "https://example.org/source-document",
        paragraphs[3],
    )


FURNITURE = [
    "Advertisement",
    "Story continues below",
    "Sign up for our Morning Briefing newsletter",
    "Get the day's top headlines delivered to your inbox every morning.",
    "Read more: Harbour strike ends after three weeks",
    "Lesen Sie auch: Streik im Hafen beendet",
    "À lire aussi : La grève du port est terminée",
    "Читайте также",
    "Share this article",
    "Photo: Juan Pérez/Reuters",
    "The minister arrives in Caracas on Tuesday. Foto: dpa",
    "STR/AFP via Getty Images",
    "Copyright © 2024 Test News. All rights reserved.",
]


def test_page_furniture_lines_are_dropped() -> None:
    paragraphs = lorem("Havana", 3)
    # Prose that mentions the same words stays: a newsletter, a photo, reading more.
    prose = (
        "The ministry said it would publish a weekly newsletter on the talks, and a photo of the signing was "
        "shared widely; officials urged citizens to read more about the agreement before the vote next month."
    )
    blocks = [
        paragraphs[0],
        FURNITURE[0],
        prose,
        *FURNITURE[1:7],
        paragraphs[1],
        *FURNITURE[7:],
        paragraphs[2],
    ]
    html = article_html(TITLE, blocks)
    article = extract_article(html.encode("utf-8"), URL)
    assert article is not None
    assert article.paragraphs == (paragraphs[0], prose, paragraphs[1], paragraphs[2])


# -- encodings ----------------------------------------------------------------------------------------------

RU_TITLE = "Пхеньян и Каракас подписали соглашение"
RU_PARAGRAPHS = [
    f"Абзац {i}: представители двух стран встретились во вторник, чтобы подробно обсудить вопросы торговли, "
    "энергетики и региональной безопасности."
    for i in range(1, 4)
]


@pytest.mark.parametrize("content_type", [None, "text/html"])
@pytest.mark.parametrize(
    "declaration",
    [
        '<meta charset="windows-1251">',
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">',
    ],
)
def test_windows_1251_page_declared_in_meta_only(content_type: str | None, declaration: str) -> None:
    html = article_html(RU_TITLE, RU_PARAGRAPHS, lang="ru").replace('<meta charset="utf-8">', declaration)
    assert "utf-8" not in html
    article = extract_article(html.encode("cp1251"), URL, content_type)
    assert article is not None
    assert article.title == RU_TITLE
    assert article.paragraphs == tuple(RU_PARAGRAPHS)
    assert article.language == "ru"


def test_http_charset_wins_over_wrong_meta() -> None:
    html = article_html(
        RU_TITLE, RU_PARAGRAPHS, lang="ru"
    )  # says utf-8 in <meta>, but is sent as windows-1251
    article = extract_article(html.encode("cp1251"), URL, "text/html; charset=windows-1251")
    assert article is not None
    assert article.title == RU_TITLE
    assert article.paragraphs == tuple(RU_PARAGRAPHS)


UNDECLARED = [  # (language, codec, title, paragraphs): pages that name no charset anywhere
    ("ru", "cp1251", RU_TITLE, RU_PARAGRAPHS),
    (
        "fr",
        "latin-1",
        "Les négociations reprennent à Genève",
        [
            f"Paragraphe {i} : les délégués se sont réunis mardi à Genève pour évoquer la sécurité "
            "régionale, "
            "l'énergie et le commerce, après des mois d'échanges difficiles."
            for i in range(1, 4)
        ],
    ),
    (
        "es",
        "cp1252",
        "Acuerdo energético en Bogotá",
        [
            f"Párrafo {i}: los ministros firmaron el «acuerdo» energético en Bogotá — según la cancillería, "
            "la región andina recibirá inversión y cooperación técnica."
            for i in range(1, 4)
        ],
    ),
    (
        "ja",
        "shift_jis",
        "東京で首脳会談が開かれた",
        [
            f"第{i}段落：両国の代表団は火曜日に東京で会談し、貿易、エネルギー、地域の安全保障について"
            "詳しく話し合った。会談は予定より長く続いた。双方は来年も協議を続けることで合意し、共同声明を発表した。"
            for i in range(1, 7)  # CJK packs a paragraph in few characters: enough for trafilatura's minimum
        ],
    ),
    (
        "zh",
        "gb2312",
        "两国代表团在北京举行会谈",
        [
            f"第{i}段：两国代表团星期二在北京举行会谈，详细讨论了贸易、能源和地区安全问题。"
            "会谈持续的时间比预期的更长。双方同意明年继续协商，并发表了联合声明，表示将扩大合作。"
            for i in range(1, 7)  # CJK packs a paragraph in few characters: enough for trafilatura's minimum
        ],
    ),
    ("ru-utf8", "utf-8", RU_TITLE, RU_PARAGRAPHS),
]


def _undeclared(lang: str, title: str, paragraphs: list[str]) -> str:
    html = article_html(title, paragraphs, lang=lang.split("-")[0]).replace('<meta charset="utf-8">', "")
    assert "charset" not in html
    return html


@pytest.mark.parametrize("content_type", [None, "text/html"])
@pytest.mark.parametrize(
    ("lang", "codec", "title", "paragraphs"), UNDECLARED, ids=[f"{u[0]}-{u[1]}" for u in UNDECLARED]
)
def test_page_without_any_charset_is_decoded_right(
    content_type: str | None, lang: str, codec: str, title: str, paragraphs: list[str]
) -> None:
    # Neither the HTTP header nor a <meta> names the charset: read as UTF-8, these would be full of U+FFFD.
    body = _undeclared(lang, title, paragraphs).encode(codec)
    article = extract_article(body, URL, content_type)
    assert article is not None
    assert "\ufffd" not in article.text
    assert article.title == title
    assert article.paragraphs == tuple(paragraphs)


def test_utf8_bytes_under_a_legacy_meta_are_read_as_utf8() -> None:
    # A page transcoded to UTF-8 (by a CMS, a proxy, an archive) that kept its old <meta charset=GB2312>.
    title, paragraphs = UNDECLARED[4][2], UNDECLARED[4][3]
    html = _undeclared("zh", title, paragraphs).replace("<head>", '<head><meta charset="GB2312">')
    article = extract_article(html.encode("utf-8"), URL, "text/html")
    assert article is not None
    assert article.title == title and article.paragraphs == tuple(paragraphs)


def test_utf8_page_with_a_stray_byte_stays_utf8() -> None:
    # One byte of another encoding pasted into an undeclared UTF-8 page must not turn the page into mojibake.
    html = _undeclared("ru", RU_TITLE, RU_PARAGRAPHS).encode("utf-8")
    broken = html.replace(b"</footer>", b" \xe9</footer>")
    article = extract_article(broken, URL)
    assert article is not None
    assert article.title == RU_TITLE and article.paragraphs == tuple(RU_PARAGRAPHS)


def test_a_prefix_cut_inside_a_character_is_still_utf8() -> None:
    # The not-an-article check decodes a bounded prefix of the page, which may end inside a character.
    html = _undeclared("ru", RU_TITLE, RU_PARAGRAPHS).encode("utf-8")
    cut = html.index("Абзац 2".encode()) + 1  # inside the two-byte "А"
    text = decode_html(html[:cut])
    assert "Абзац 1" in text and "\ufffd" not in text[:-1]


def test_seven_bit_charset_is_taken_from_its_declaration() -> None:
    # ISO-2022-JP is all ASCII bytes: only the declaration tells it from ASCII.
    title, paragraphs = UNDECLARED[3][2], UNDECLARED[3][3]
    html = _undeclared("ja", title, paragraphs).replace("<head>", '<head><meta charset="iso-2022-jp">')
    body = html.encode("iso-2022-jp")
    assert body.isascii()
    article = extract_article(body, URL)
    assert article is not None
    assert article.title == title and article.paragraphs == tuple(paragraphs)


def test_utf8_bom_decides() -> None:
    html = article_html(RU_TITLE, RU_PARAGRAPHS, lang="ru").replace(
        '<meta charset="utf-8">', '<meta charset="koi8-r">'
    )
    article = extract_article(b"\xef\xbb\xbf" + html.encode("utf-8"), URL, "text/html; charset=windows-1251")
    assert article is not None
    assert article.title == RU_TITLE and article.paragraphs == tuple(RU_PARAGRAPHS)


def test_extraction_has_no_memory_between_pages() -> None:
    # trafilatura's deduplicate=True keeps a process-wide cache; extract_article must not use it.
    shared = lorem("Pyongyang", 3)
    page_a = article_html("Story A", shared).encode("utf-8")
    page_b = article_html(
        "Story B", [*shared, "A different closing paragraph about Caracas and the talks."]
    ).encode()
    first = extract_article(page_a, URL)
    extract_article(page_b, URL + "/b")
    extract_article(page_b, URL + "/b")
    again = extract_article(page_a, URL)
    assert first is not None and again == first
    assert first.paragraphs == tuple(shared)


# -- real pages ---------------------------------------------------------------------------------------------


def _benchmark_pages() -> list[Path]:
    folder = BENCHMARK / "html"
    return sorted(folder.glob("*.html.gz"))[:BENCHMARK_PAGES] if folder.is_dir() else []


def test_benchmark_pages_pass_check_archive(tmp_path: Path) -> None:
    need_shared()
    pages = _benchmark_pages()
    if not pages:
        pytest.skip(f"corpus absent: {BENCHMARK / 'html'}")
    truth = json.loads((BENCHMARK / "ground-truth.json").read_text("utf-8"))
    for page in pages:
        url = truth[page.name.removesuffix(".html.gz")]["url"]
        article = extract_article(gzip.decompress(page.read_bytes()), url)
        assert article is not None, page.name
        assert article.title and article.paragraphs, page.name
        write_item(tmp_path, "2019-06-01", url_digest(url), article.text, {"url": url, "topics": []})
    result = subprocess.run(
        [sys.executable, str(CHECK_ARCHIVE), str(tmp_path / "archive")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == f"{len(pages)} files, 0 failed"
