"""Topic flagging: keyword rules from config/topics.yaml -> Flags (topics + evidence) for one article.

Matching works on a *folded* copy of the text, computed once per article: case-folded, diacritics stripped in
every script (NFKD, drop combining marks, NFC again so Hangul syllables recompose), typographic apostrophes,
quotes and dashes mapped to ASCII, soft hyphens and zero-width characters dropped. Terms are folded the same
way when compiled, so "Nicolás" matches "NICOLAS" and "Kim Yong‑nam" (non-breaking hyphen) matches
"Kim Yong-nam".

A term matches whole words only ("Cuba" does not match "Cubano", "Putin" not "computing"), except:
- a word ending in `*` matches any word starting with it ("Пхеньян*" matches Пхеньяна, "Латинск* Америк*"
  matches Латинской Америки), for inflected languages such as Russian or German;
- a space in a term matches any run of spaces, line breaks or hyphens; a hyphen also matches nothing, so
  "G-77" matches "G77" and "Kim Jong-un" matches "Kim Jong Un" and "Kim Jongun"; an apostrophe may be missing
  ("Workers' Party" matches "Workers Party");
- Korean attaches particles to nouns (북한의, 조선은, 평양에서), so a term ending in a Hangul
  syllable also matches when a few particles follow it. This is a closed list of particles rather
  than a plain prefix match, because prefixes are false friends: 조선 (Korea, the DPRK's own name)
  would otherwise match 조선업 (shipbuilding) and 북한 would match 북한산 (a mountain in Seoul).
  The start of a Hangul term is still a word boundary (조선 does not match 남조선);
- Chinese, Japanese and Thai are written without spaces, so a term edge in those scripts has no word boundary.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from crawler.models import Flags

# Evidence recorded for a topic set because the article's source lists it (sources.yaml `topics:`). It cannot
# be mistaken for a keyword: terms always contain a letter or digit and never start with "@".
SOURCE_EVIDENCE = "@source"


# --- configuration model ----------------------------------------------------------------------------------


def _check_term(term: str) -> str:
    term = term.strip()
    if not term:
        raise ValueError("a term must be a non-empty string")
    if term.startswith("re:"):  # reserved for regular-expression terms (issue 4): no silent change of meaning
        raise ValueError("regular-expression terms (`re:`) are not supported yet")
    if any("*" in word[:-1] or word == "*" for word in term.split()):
        raise ValueError(f"`*` is only allowed at the end of a word, got: {term!r}")
    if not re.search(r"\w", term):
        raise ValueError(f"a term needs at least one letter or digit, got: {term!r}")
    return term


def _check_name(name: str) -> str:
    if not name.strip():
        raise ValueError("a topic name must be a non-empty string")
    return name.strip()


Term = Annotated[str, AfterValidator(_check_term)]
TopicName = Annotated[str, AfterValidator(_check_name)]


class TopicDef(BaseModel):
    """One topic as written under `topics:` in topics.yaml. Every condition given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    any_: list[Term] = Field(default=[], alias="any")  # at least one must occur
    all_: list[Term] = Field(default=[], alias="all")  # every one must occur
    none: list[Term] = []  # if any occurs, the topic is not flagged
    all_topics: list[TopicName] = []  # composite: every named topic must be flagged
    # `any:` terms must occur this often in all (every occurrence counts, twice in the title): a country named
    # once in passing (a tennis team, a transit airport) is not an article about it.
    min_count: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _needs_a_rule(self) -> TopicDef:
        # `none:` alone would flag every article that lacks the excluded terms: surely a mistake.
        if not (self.any_ or self.all_ or self.all_topics):
            raise ValueError("a topic needs `any:`, `all:` or `all_topics:`")
        if self.min_count > 1 and not self.any_:
            raise ValueError("`min_count:` counts the `any:` terms, and this topic has none")
        return self


def check_topic_refs(defs: Mapping[str, TopicDef]) -> list[tuple[str, str]]:
    """Problems of composite topics: (topic name, message) for unknown names in all_topics and for cycles."""
    problems = [
        (name, f"all_topics: unknown topic {ref!r}")
        for name, d in defs.items()
        for ref in d.all_topics
        if ref not in defs
    ]
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for ref in defs[name].all_topics:
            if state.get(ref) == 1:  # back edge: report the cycle once, on the topic that closes it
                cycle = [*path[path.index(ref) :], ref]
                problems.append((name, "all_topics: cycle " + " -> ".join(cycle)))
            elif ref in defs and ref not in state:
                visit(ref, [*path, ref])
        state[name] = 2

    for name in defs:
        if name not in state:
            visit(name, [name])
    return problems


# --- folding ----------------------------------------------------------------------------------------------

_PUNCT = str.maketrans(
    {
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u02bc\u0060", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
        # Hyphens, dashes and minus signs are all "-" (NFKD has already made U+2011 a U+2010).
        **{c: "-" for c in map(chr, range(0x2010, 0x2016))},
        "\u2212": "-",
        "\ufe63": "-",
        "\uff0d": "-",
        **dict.fromkeys("\u00ad\u200b\u2060\ufeff"),  # soft hyphen, zero-width space/joiner, BOM: dropped
    }
)


def fold(text: str) -> str:
    """Case-, diacritics- and punctuation-insensitive form of `text`; terms and articles are folded alike."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped).translate(_PUNCT)


# --- compiling --------------------------------------------------------------------------------------------

# Korean particles (josa) and copula endings that may follow a noun, longest first; up to three may stack
# (북한에서는 = 북한 + 에서 + 는).
# fmt: off
_PARTICLES = (
    "은", "는", "이", "가", "을", "를", "의", "에", "에서", "에게", "께", "한테", "와", "과",
    "랑", "이랑", "도", "로", "으로", "만", "까지", "부터", "보다", "처럼", "조차", "마저",
    "이나", "나", "측", "이다", "이며", "이고", "이라는", "이라고", "입니다", "으로서", "으로써",
    "로서", "로써",
)
# fmt: on
_JOSA = "|".join(sorted(_PARTICLES, key=len, reverse=True))


def _is_hangul(c: str) -> bool:
    return "\uac00" <= c <= "\ud7a3"


def _unspaced(c: str) -> bool:
    """Scripts written without spaces between words: no word boundary can be required there."""
    return unicodedata.name(c, "").startswith(("CJK UNIFIED", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER"))


def _term_pattern(term: str) -> tuple[bool, str]:
    """(whether the term must start at a word start, the regex for the rest of the term)."""
    folded = fold(term)
    words = []
    for word in folded.split():
        # A hyphen matches a space, a hyphen or nothing ("G-77", "G77"); an apostrophe may be left out
        # ("People's Liberation Army", "Peoples Liberation Army"). re.escape has escaped "-" but not "'".
        pattern = re.escape(word.rstrip("*")).replace(r"\-", r"[\s-]*").replace("'", "'?")
        words.append(pattern + r"\w*" if word.endswith("*") else pattern)
    body = r"[\s-]+".join(words)
    last = folded.rstrip("*")[-1]
    if folded.endswith("*") or _unspaced(last):
        end = ""  # \w* already ran to the end of the word; unspaced scripts have no word ends
    elif _is_hangul(last):
        end = rf"(?:{_JOSA}){{0,3}}(?!\w)"
    else:
        end = r"(?!\w)"
    return not _unspaced(folded[0]), body + end


@dataclass(frozen=True, slots=True)
class _Terms:
    """A list of terms compiled into one regex to scan the text once, plus one regex per term to tell which
    term a match was (only run on matches, which are few)."""

    terms: tuple[str, ...]
    combined: re.Pattern[str]
    each: tuple[re.Pattern[str], ...]

    @classmethod
    def compile(cls, terms: Sequence[str]) -> _Terms | None:
        if not terms:
            return None
        terms = tuple(dict.fromkeys(terms))
        parts = [_term_pattern(t) for t in terms]
        # Speed: the word-start check is made once, before the alternatives, so that inside words none is
        # tried; and the alternatives have no groups, so each starts with a literal that the regex engine
        # checks before trying it. Together that is ~40x faster than "(?<!\w)(a)|(?<!\w)(b)|...".
        spaced = "|".join(body for bounded, body in parts if bounded)
        unspaced = "|".join(body for bounded, body in parts if not bounded)
        combined = "|".join(
            ([rf"(?<!\w)(?:{spaced})"] if spaced else []) + ([f"(?:{unspaced})"] if unspaced else [])
        )
        each = tuple(re.compile((r"(?<!\w)" if bounded else "") + body) for bounded, body in parts)
        return cls(terms, re.compile(combined), each)

    def scan(self, folded: str) -> Iterator[tuple[int, int]]:
        """(index of the term, start) for each non-overlapping occurrence, leftmost first."""
        for m in self.combined.finditer(folded):
            # The first term that matches here is the alternative the combined regex took.
            yield next((i for i, rx in enumerate(self.each) if rx.match(folded, m.start())), 0), m.start()


@dataclass(frozen=True, slots=True)
class _Topic:
    name: str
    any_: _Terms | None
    min_count: int
    all_: tuple[_Terms, ...]  # one per term: each must be found on its own
    none: _Terms | None
    all_topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TopicMatcher:
    """Compiled topic rules, components before the composites that use them. Picklable (for process pools)."""

    topics: tuple[_Topic, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.topics)


def compile_topics(defs: Mapping[str, TopicDef]) -> TopicMatcher:
    """Compile the rules once; raises ValueError on unknown or cyclic all_topics (see check_topic_refs)."""
    problems = check_topic_refs(defs)
    if problems:
        raise ValueError("; ".join(f"topic {name}: {msg}" for name, msg in problems))
    order: list[str] = []

    def place(name: str) -> None:  # depth-first, so every component is placed before its composite
        if name not in order:
            for ref in defs[name].all_topics:
                place(ref)
            order.append(name)

    for name in defs:
        place(name)
    compiled = []
    for name in order:
        d = defs[name]
        all_ = (_Terms.compile([t]) for t in dict.fromkeys(d.all_))
        compiled.append(
            _Topic(
                name=name,
                any_=_Terms.compile(d.any_),
                min_count=d.min_count,
                all_=tuple(t for t in all_ if t is not None),
                none=_Terms.compile(d.none),
                all_topics=tuple(d.all_topics),
            )
        )
    return TopicMatcher(tuple(compiled))


# --- flagging ---------------------------------------------------------------------------------------------


def flag_topics(title: str, text: str, matcher: TopicMatcher, source_topics: Sequence[str] = ()) -> Flags:
    """Topics that the article matches; `text` is the body, without the title line.

    Evidence per topic: the config terms that matched (in config order), the component topics of a composite,
    and SOURCE_EVIDENCE first for the source's own topics, which are always set and count for composites."""
    folded_title = fold(title)
    folded = f"{folded_title}\n\n{fold(text)}"
    evidence: dict[str, list[str]] = {name: [SOURCE_EVIDENCE] for name in dict.fromkeys(source_topics)}
    for topic in matcher.topics:
        found = _match(topic, folded, len(folded_title), evidence)
        if found is not None:
            evidence.setdefault(topic.name, []).extend(found)
    names = tuple(sorted(evidence))
    return Flags(topics=names, evidence={name: evidence[name] for name in names})


def _match(topic: _Topic, folded: str, title_end: int, flagged: Mapping[str, object]) -> list[str] | None:
    """The evidence if the topic's rule holds, else None."""
    if not all(ref in flagged for ref in topic.all_topics):
        return None
    seen: set[int] = set()  # indexes of the any-terms that occurred
    if topic.any_ is not None:
        count = 0
        for i, start in topic.any_.scan(folded):
            seen.add(i)
            # A headline names what the article is about, so a term there counts twice towards min_count:
            # a short item titled "DPRK delegation visits Venezuela" names the country once more at most.
            count += 2 if start < title_end else 1
        if count < topic.min_count:
            return None
    if not all(t.combined.search(folded) for t in topic.all_):
        return None
    if topic.none is not None and topic.none.combined.search(folded):
        return None
    any_hits = [topic.any_.terms[i] for i in sorted(seen)] if topic.any_ is not None else []
    all_hits = [t.terms[0] for t in topic.all_]
    return [*dict.fromkeys([*any_hits, *all_hits]), *topic.all_topics]
