"""Identity of items: normalised URLs, feed GUIDs and content hashes, as index keys.

An item is known when any of its keys is in the index. The keys are checked twice: from the feed entry alone
(URL, GUID) before the article is fetched, which is the cheap check that keeps re-polls free; and after
extraction (the URL after redirects, the canonical URL, the text's hash), which catches the same article
reached by another address.
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata
from collections import Counter
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from courlan import normalize_url
from trafilatura.deduplication import sample_tokens

from crawler.models import Article, FeedItem

_WORDS = re.compile(r"\w+")


def normalise_url(url: str) -> str:
    """Lower-case scheme and host, default port and fragment dropped, tracking parameters removed."""
    try:
        normal = normalize_url(url.strip(), strict=False)
    except (ValueError, TypeError):
        normal = url.strip()
    parts = urlsplit(normal)
    # The fragment names a place in a page, not another page.
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))


def url_digest(url: str) -> str:
    """The 16 hex digits that name an archive file: SHA-256 of the normalised URL."""
    return hashlib.sha256(normalise_url(url).encode("utf-8")).hexdigest()[:16]


def content_hash(article: Article) -> str:
    """SHA-256 of the article's words, case-folded: equal for the same text in other markup or spacing."""
    text = unicodedata.normalize("NFKC", article.body).casefold()
    return hashlib.sha256(" ".join(_WORDS.findall(text)).encode("utf-8")).hexdigest()


def url_key(url: str) -> str:
    return "url:" + normalise_url(url)


def guid_key(source: str, guid: str) -> str:
    # A GUID is unique only within its feed: two feeds may both number their entries 1, 2, 3.
    return f"guid:{source}:{guid}"


def feed_keys(source: str, item: FeedItem) -> list[str]:
    """Every key of a feed entry (its URL, and its GUID when it has one), recorded when it is filed."""
    keys = [url_key(item.url)]
    if item.guid:
        keys.append(guid_key(source, item.guid))
    return keys


# Over this share of empty or repeated GUIDs, a feed's GUIDs identify nothing and its URLs are used instead.
BAD_GUIDS = 0.05


def identity_keys(source: str, entries: list[FeedItem]) -> list[str]:
    """The key that says whether each entry of one poll was seen before, in entry order.

    The feed GUID (unique within its source) when the feed's GUIDs can be trusted; GUID plus URL for a GUID
    the feed repeats; the normalised URL when the entry has no GUID or the feed's GUIDs are unreliable.
    """
    guids = [e.guid or "" for e in entries]
    counts = Counter(guids)
    bad = sum(1 for g in guids if not g or counts[g] > 1)
    trust = bool(entries) and bad / len(entries) <= BAD_GUIDS
    out = []
    for entry, guid in zip(entries, guids, strict=True):
        if trust and guid and counts[guid] == 1:
            out.append(guid_key(source, guid))
        elif trust and guid:
            out.append(f"{guid_key(source, guid)}|{normalise_url(entry.url)}")
        else:
            out.append(url_key(entry.url))
    return out


# -- near-duplicates --------------------------------------------------------------------------------------
# A story syndicated or lightly edited on several sites differs in a few words, so its Simhash differs in a
# few bits. Candidates are found by banding: the 64 bits are cut into 8 bands of 8 bits, and an item is a
# candidate when any band is equal, which catches every pair up to 7 bits apart without comparing against
# the whole archive. A candidate is confirmed on the texts themselves (shared word 4-grams).
BANDS = 8
BAND_BITS = 64 // BANDS
NEAR_BITS = 7
NEAR_JACCARD = 0.5


# The fingerprint is trafilatura's Simhash (deduplication.Simhash(text).hash), bit for bit, so fingerprints
# stored by earlier versions stay comparable. Its definition: take sample_tokens(text, 64); hash each token
# with blake2b to 8 bytes, read big-endian; set bit i of the fingerprint when at least half of the tokens
# have bit i set (trafilatura sums +1/-1 per token and keeps the bits whose sum is >= 0, that is
# 2 * count_i - n >= 0; no tokens at all gives every bit set). trafilatura adds a 64-element list per token,
# ~5 ms an article. Here the 64 counts are added in one go: each token's hash is spread into one big integer
# with a 16-bit counter field per bit (bit i of the hash -> field i), so adding the integers of all tokens
# adds the 64 counters at once, at C speed. A field holds up to 65,535 tokens: longer samples are summed in
# chunks of that size.
SIMHASH_BITS = 64
_FIELD_BYTES = 2
_CHUNK = (1 << (8 * _FIELD_BYTES)) - 1  # tokens one sum may count without a field carrying into the next
_COUNTS = struct.Struct(f"<{SIMHASH_BITS}H")  # the fields of a sum, field 0 first
# _SPREAD[v]: the 8 bits of the byte value v as 8 fields (bit b of v -> field b), little-endian bytes.
_SPREAD = tuple(b"".join((v >> b & 1).to_bytes(_FIELD_BYTES, "little") for b in range(8)) for v in range(256))


@lru_cache(maxsize=2**14)
def _spread(token: str) -> int:
    """The token's hash with bit i moved to counter field i (cached: common words recur in every article)."""
    digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
    # trafilatura reads the digest big-endian, so its bit i is in the digest's byte 7 - i // 8: reversed, byte
    # k holds bits 8k..8k+7, and its 8 spread fields are fields 8k..8k+7 of the little-endian whole.
    return int.from_bytes(b"".join([_SPREAD[byte] for byte in digest[::-1]]), "little")


def fingerprint(text: str) -> int:
    """trafilatura's 64-bit Simhash of the text (see above), computed about five times faster."""
    tokens = sample_tokens(text, SIMHASH_BITS)
    counts = [0] * SIMHASH_BITS
    for start in range(0, len(tokens), _CHUNK):
        total = sum(map(_spread, tokens[start : start + _CHUNK]))
        sums = _COUNTS.unpack(total.to_bytes(_COUNTS.size, "little"))
        counts = [a + b for a, b in zip(counts, sums, strict=True)]
    n = len(tokens)
    return sum(1 << bit for bit, count in enumerate(counts) if 2 * count - n >= 0)


def bands(fp: int) -> list[tuple[int, int]]:
    mask = (1 << BAND_BITS) - 1
    return [(b, (fp >> (b * BAND_BITS)) & mask) for b in range(BANDS)]


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def resemblance(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' word 4-grams (case-folded)."""
    sa, sb = _shingles(a), _shingles(b)
    return len(sa & sb) / len(sa | sb) if sa and sb else 0.0


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = _WORDS.findall(unicodedata.normalize("NFKC", text).casefold())
    return {tuple(words[i : i + 4]) for i in range(max(1, len(words) - 3))}


def article_keys(final_url: str, article: Article) -> list[str]:
    keys = [url_key(final_url)]
    if article.canonical_url:
        keys.append(url_key(article.canonical_url))
    return keys
