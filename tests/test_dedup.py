"""Identity keys: normalised URLs (courlan), URL digests, content hashes and GUID scoping."""

from __future__ import annotations

import hashlib
import json
import random

import pytest
from conftest import CORPORA
from trafilatura.deduplication import Simhash

from crawler.dedup import (
    article_keys,
    content_hash,
    feed_keys,
    fingerprint,
    guid_key,
    normalise_url,
    url_digest,
    url_key,
)
from crawler.models import Article, FeedItem

STORY = "https://news.example.org/world/story?id=42"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://news.example.org/world/story?utm_source=rss&utm_medium=feed&id=42&fbclid=abc#comments",
            STORY,
        ),
        ("HTTPS://News.Example.ORG/world/story?id=42", STORY),
        ("https://news.example.org:443/world/story?id=42", STORY),
        ("https://news.example.org/world/story?id=42#section-2", STORY),
        ("https://news.example.org/world/story?id=42&utm_campaign=spring&utm_content=x&utm_term=y", STORY),
        ("  https://news.example.org/world/story?id=42  ", STORY),
        ("http://news.example.org:80/a", "http://news.example.org/a"),
        ("https://news.example.org", "https://news.example.org/"),
        ("https://news.example.org/a?gclid=123", "https://news.example.org/a"),
        ("https://news.example.org/a#/app/route", "https://news.example.org/a"),
    ],
)
def test_normalise_url(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://news.example.org/world/story?id=42&utm_source=x", "id=42"),
        ("https://news.example.org/list?page=2", "page=2"),
        ("https://news.example.org/search?q=kim+jong+un", "q=kim+jong+un"),
        ("https://news.example.org/article.php?lang=es&art=7", "art=7"),
        ("https://news.example.org/article.php?lang=es&art=7", "lang=es"),
    ],
)
def test_meaningful_query_parameters_are_kept(url: str, kept: str) -> None:
    normal = normalise_url(url)
    assert kept in normal.split("?", 1)[1].split("&")
    assert "utm_" not in normal


def test_path_case_is_kept() -> None:
    # Only scheme and host are case-insensitive; paths and queries are not.
    assert (
        normalise_url("https://NEWS.example.org/World/Story?ID=42")
        == "https://news.example.org/World/Story?ID=42"
    )
    assert normalise_url("https://news.example.org/A") != normalise_url("https://news.example.org/a")


def test_different_pages_stay_different() -> None:
    urls = [
        "https://news.example.org/world/story?id=42",
        "https://news.example.org/world/story?id=43",
        "https://news.example.org/world/story",
        "https://news.example.org/world/story2?id=42",
        "https://other.example.org/world/story?id=42",
    ]
    assert len({normalise_url(u) for u in urls}) == len(urls)
    assert len({url_digest(u) for u in urls}) == len(urls)


def test_url_digest_is_sha256_prefix_of_normalised_url() -> None:
    expected = hashlib.sha256(STORY.encode("utf-8")).hexdigest()[:16]
    assert url_digest(STORY) == expected
    assert len(expected) == 16 and expected == expected.lower()
    assert url_digest("https://News.Example.org/world/story?utm_source=rss&id=42&fbclid=z#top") == expected
    assert url_digest("https://news.example.org/world/story?id=42&utm_medium=email") == expected


def test_url_key_uses_normalised_url() -> None:
    assert url_key("https://News.Example.org/world/story?id=42&utm_source=rss") == f"url:{STORY}"


def article(body: tuple[str, ...], title: str = "Title") -> Article:
    return Article(title=title, paragraphs=body)


def test_content_hash_ignores_spacing_and_case() -> None:
    one = article(("Kim Jong Un met Nicolás Maduro in Pyongyang.", "Trade was discussed."))
    two = article(("kim   jong un MET nicolás\tmaduro in pyongyang.", "  Trade  was DISCUSSED. "))
    three = article(("Kim Jong Un met Nicolás Maduro in Pyongyang. Trade was discussed.",))
    assert content_hash(one) == content_hash(two) == content_hash(three)
    assert len(content_hash(one)) == 64
    int(content_hash(one), 16)  # hex


def test_content_hash_ignores_punctuation_and_unicode_forms() -> None:
    nfc = article(("Nicolás Maduro — en Bogotá!",))
    nfd = article(("Nicola\u0301s Maduro, en Bogota\u0301.",))
    assert content_hash(nfc) == content_hash(nfd)


def test_content_hash_is_of_the_body_not_the_title() -> None:
    body = ("The same wire story carried by two sites.",)
    assert content_hash(article(body, "Site A headline")) == content_hash(article(body, "Site B headline"))


@pytest.mark.parametrize(
    "other",
    [
        ("Kim Jong Un met Nicolás Maduro in Caracas.", "Trade was discussed."),
        ("Kim Jong Un met Nicolás Maduro in Pyongyang.",),
        ("Trade was discussed.", "Kim Jong Un met Nicolás Maduro in Pyongyang."),
    ],
)
def test_content_hash_differs_for_different_text(other: tuple[str, ...]) -> None:
    base = article(("Kim Jong Un met Nicolás Maduro in Pyongyang.", "Trade was discussed."))
    assert content_hash(base) != content_hash(article(other))


def test_guid_keys_are_scoped_per_source() -> None:
    assert guid_key("kcna", "1") == "guid:kcna:1"
    assert guid_key("kcna", "1") != guid_key("rt", "1")
    a = feed_keys("kcna", FeedItem(url="https://kcna.example/a?utm_source=rss", guid="1"))
    b = feed_keys("rt", FeedItem(url="https://rt.example/b", guid="1"))
    assert a == ["url:https://kcna.example/a", "guid:kcna:1"]
    assert b == ["url:https://rt.example/b", "guid:rt:1"]
    assert not set(a) & set(b)


def test_feed_keys_same_guid_same_source_collide() -> None:
    first = feed_keys("kcna", FeedItem(url="https://kcna.example/a", guid="urn:1"))
    moved = feed_keys("kcna", FeedItem(url="https://kcna.example/new-address", guid="urn:1"))
    assert set(first) & set(moved) == {"guid:kcna:urn:1"}


def test_feed_keys_without_guid_is_url_only() -> None:
    assert feed_keys("kcna", FeedItem(url="https://kcna.example/a#x")) == ["url:https://kcna.example/a"]
    assert feed_keys("kcna", FeedItem(url="https://kcna.example/a", guid="")) == [
        "url:https://kcna.example/a"
    ]


def test_article_keys_add_canonical_url() -> None:
    art = Article(
        title="t", paragraphs=("p",), canonical_url="https://news.example.org/canonical?utm_source=x"
    )
    assert article_keys("https://m.news.example.org/amp/1", art) == [
        "url:https://m.news.example.org/amp/1",
        "url:https://news.example.org/canonical",
    ]
    assert article_keys("https://e.org/a", Article(title="t", paragraphs=("p",))) == ["url:https://e.org/a"]


# --- the Simhash fingerprint -------------------------------------------------------------------------------
# crawler.dedup.fingerprint is a faster computation of trafilatura's Simhash: fingerprints already in the
# index were made by trafilatura, so the two must agree bit for bit on every text.


def _random_text(rng: random.Random) -> str:
    """Words of every length (the token sample keeps the longer ones), punctuation stuck to them, several
    scripts, repeats, and unspaced Chinese or Japanese runs; from no words at all to a few hundred."""
    alphabets = ["abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", "éèàüöäßçñ", "абвгд"]
    vocab = ["".join(rng.choice(rng.choice(alphabets)) for _ in range(rng.randint(1, 12))) for _ in range(60)]
    vocab += ["U.S.", "e-mail", "don't", "«quoted»", "(aside)", "—", "...", "42", "3.14", "x_y", "😀"]
    cjk = ["北朝鮮は", "ミサイルを発射した", "。", "、", "朝鲜宣布", "！", "平壤"]
    words = []
    for _ in range(rng.choice([0, 1, 5, 20, 31, 32, 33, 64, 65, 200, 600])):
        word = rng.choice(cjk if rng.random() < 0.1 else vocab)
        words.append(rng.choice(["", "(", '"', "'"]) + word + rng.choice(["", ",", ".", "!", ";", ":", "?"]))
    return "".join(w + rng.choice([" ", " ", "\n", "\t", "  ", ""]) for w in words)


EDGE_TEXTS = [
    "",
    "   \n\t ",
    "!!! ... --- ???",
    "word",
    "a b c d e f",  # only short tokens: the sample falls back to all of them
    "alpha beta",  # two tokens: a tie (2 * 1 - 2 = 0) on every bit where their hashes differ
    " ".join(["tokens"] * 31 + ["other"]),  # at the sample threshold (length / 2 = 32)
    " ".join(f"word{i}" for i in range(33)),
    "北朝鮮はミサイルを発射した。平壌は声明を出した。",  # no space-separated tokens: punctuation split
    "朝鲜，韩国；日本：中国",
    "„Zitat“ — «citation» — 'quote'",
]


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_fingerprint_is_trafilaturas_simhash_on_edge_texts(text: str) -> None:
    assert fingerprint(text) == Simhash(text).hash


def test_fingerprint_is_trafilaturas_simhash_on_random_texts() -> None:
    rng = random.Random(20260601)
    texts = [_random_text(rng) for _ in range(400)]
    assert [fingerprint(t) for t in texts] == [Simhash(t).hash for t in texts]


def test_fingerprint_is_trafilaturas_simhash_beyond_one_counter_field() -> None:
    # Over 65,535 sampled tokens the counts are summed in several chunks (a 16-bit field would overflow).
    rng = random.Random(7)
    vocab = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(5, 9))) for _ in range(3000)]
    text = " ".join(rng.choice(vocab) for _ in range(70_000))
    assert fingerprint(text) == Simhash(text).hash


def test_fingerprint_is_trafilaturas_simhash_on_corpus_articles() -> None:
    texts = []
    for name in ("article-extraction-benchmark", "fundus"):
        path = CORPORA / name / "ground-truth.json"
        if not path.is_file():
            pytest.skip(f"{path} is absent (../shared/corpora is not beside the checkout)")
        pages = json.loads(path.read_text(encoding="utf-8"))
        texts += [page.get("articleBody") or "" for _, page in sorted(pages.items())]
        texts += [page.get("title") or "" for _, page in sorted(pages.items())]
    assert len(texts) > 200
    assert [fingerprint(t) for t in texts] == [Simhash(t).hash for t in texts]
