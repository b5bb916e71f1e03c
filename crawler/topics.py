"""Topic flagging: keyword rules from config/topics.yaml -> Flags (topics, evidence, scores) for one article.

Matching works on a *folded* copy of the text, made one character at a time so that every folded position
maps back to the original (the evidence quotes the original sentence): case-folded, diacritics stripped in
every script (NFKD, drop combining marks, NFC again so Hangul syllables recompose), typographic apostrophes,
quotes and dashes mapped to ASCII, soft hyphens and zero-width characters dropped. Terms are folded the same
way when compiled, so "Nicolás" matches "NICOLAS" and "Kim Yong‑nam" (non-breaking hyphen) matches
"Kim Yong-nam". Folding can change the length ("ß" -> "ss", a dropped soft hyphen), hence the offset map.

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

Regular-expression terms (`re:` prefix) run on the folded text too, case-insensitively: write them in lower
case or upper case alike, without diacritics, with plain quotes and hyphens. Regex syntax is ASCII, so the
non-ASCII characters of a pattern are literals and are folded like the text ("re:nicolás\\s+maduro" works).
Their match must also start and end at word edges: `re:kim\\w*` to allow endings. Bad patterns, and patterns
that match the empty text, are validation errors that quote the pattern.

Proximity (`near:`): words are runs of letters and digits ("Kim Jong-un" is three); the terms of a clause
are near when one occurrence of each fits in a stretch with at most `within` other words between them.

Everything one topic finds respects its `in:` (title, text), and occurrences inside its `ignore:` phrases do
not count ("Mexico" inside "New Mexico"). A topic's score is the sum of its term matches, TITLE_WEIGHT for
one in the title and TEXT_WEIGHT in the text; a composite adds the smallest score of its parts; a topic the
source sets scores at least SOURCE_SCORE.

Evidence, per flagged topic, as the sidecar stores it: {"term", "count", "sentence", "where"} for each term
that matched, in config order ("sentence": the first sentence of the original text it matched in, cut to
about SENTENCE_CHARS; "where": title or text, of that first match); {"term": "@source", "count": 1,
"sentence": ""} first for a topic the source sets; and for a composite, one {"term": "@PART", ...} per part
(its match count and earliest sentence).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from crawler.models import Flags

# Evidence recorded for a topic set because the article's source lists it (sources.yaml `topics:`). It cannot
# be mistaken for a keyword: terms always contain a letter or digit and never start with "@". The parts of a
# composite topic are recorded the same way, as "@" + the part's name.
SOURCE_EVIDENCE = "@source"
TITLE_WEIGHT = 3.0  # score of one match in the title: a headline says what the article is about
TEXT_WEIGHT = 1.0  # score of one match in the text
SOURCE_SCORE = 3.0  # the least score of a topic set by the source (as much as one title match)
DEFAULT_WITHIN = 10  # `near:` terms at most this many words apart unless `within:` says otherwise
SENTENCE_CHARS = 300  # evidence sentences longer than this are cut around the match
REGEX_PREFIX = "re:"


# --- configuration model ----------------------------------------------------------------------------------


def _check_term(term: str) -> str:
    term = term.strip()
    if not term:
        raise ValueError("a term must be a non-empty string")
    if term.startswith(REGEX_PREFIX):
        _compile_regex(term[len(REGEX_PREFIX) :])  # raises ValueError quoting the pattern
        return term
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
Where = Literal["title", "text"]


class NearClause(BaseModel):
    """`near:` in its list form: every term occurs, at most `within` other words between them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    terms: list[Term] = Field(min_length=2)
    within: int | None = Field(default=None, ge=0)  # default: the topic's `within:`, else DEFAULT_WITHIN


class TopicDef(BaseModel):
    """One topic as written under `topics:` in topics.yaml. Every condition given must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    any_: list[Term] = Field(default=[], alias="any")  # at least one must occur
    all_: list[Term] = Field(default=[], alias="all")  # every one must occur
    # Proximity: `near: [a, b]` (one clause) or a list of {terms: [...], within: N} (every clause must hold).
    near: list[NearClause] = []
    within: int | None = Field(default=None, ge=0)  # words allowed between `near:` terms
    none: list[Term] = []  # if any occurs, the topic is not flagged
    ignore: list[Term] = []  # phrases whose words do not count ("New Mexico" for a bare "Mexico")
    all_topics: list[TopicName] = []  # composite: every named topic must be flagged
    # `any:` terms must occur this often in all (every occurrence counts, twice in the title): a country named
    # once in passing (a tennis team, a transit airport) is not an article about it.
    min_count: int = Field(default=1, ge=1)
    in_: list[Where] = Field(
        default=["title", "text"], alias="in", min_length=1
    )  # where terms are looked for

    @field_validator("near", mode="before")
    @classmethod
    def _simple_near(cls, near: Any) -> Any:
        # `near: [a, b]` is one clause; `near: [{terms: [a, b], within: 5}, ...]` several.
        if isinstance(near, list):
            strings = [isinstance(x, str) for x in near]
            if near and all(strings):
                return [{"terms": near}]
            if any(strings):
                raise ValueError(
                    "`near:` is either a list of terms (one clause) or a list of {terms: [...], within: N}"
                    " clauses, not a mix"
                )
        return near

    @model_validator(mode="after")
    def _needs_a_rule(self) -> TopicDef:
        # `none:` alone would flag every article that lacks the excluded terms: surely a mistake.
        if not (self.any_ or self.all_ or self.near or self.all_topics):
            raise ValueError("a topic needs `any:`, `all:`, `near:` or `all_topics:`")
        if self.min_count > 1 and not self.any_:
            raise ValueError("`min_count:` counts the `any:` terms, and this topic has none")
        if self.within is not None and not self.near:
            raise ValueError("`within:` is the distance of `near:` terms, and this topic has no `near:`")
        return self

    def near_within(self, clause: NearClause) -> int:
        if clause.within is not None:
            return clause.within
        return self.within if self.within is not None else DEFAULT_WITHIN


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


def _fold_char(c: str) -> str:
    decomposed = unicodedata.normalize("NFKD", c.casefold())
    stripped = "".join(x for x in decomposed if not unicodedata.combining(x))
    return unicodedata.normalize("NFC", stripped).translate(_PUNCT)


class _FoldTable(dict[str, str]):
    """Character -> its folded form (zero, one or more characters), computed once per character seen."""

    def __missing__(self, c: str) -> str:
        self[c] = folded = _fold_char(c)
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """Case-, diacritics- and punctuation-insensitive form of `text`; terms and articles are folded alike.

    Folded one character at a time (the text is NFC-normalised first, so a letter and its combining accent
    are one character), so that positions map back to the original; see _Doc."""
    text = unicodedata.normalize("NFC", text)
    if text.isascii():  # the common case, and C speed: ASCII folding is lower case and one quote
        return text.lower().replace("`", "'")
    return "".join(map(_FOLD.__getitem__, text))


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


def _compile_regex(pattern: str) -> re.Pattern[str]:
    """An `re:` term's pattern, for folded text; ValueError (quoting the pattern) when it is unusable."""
    source = pattern.strip()
    if not source:
        raise ValueError("`re:` needs a regular expression after it")
    # Regex syntax is ASCII: a non-ASCII character is a literal, folded like the text ("á" -> "a").
    folded = "".join(c if c.isascii() else re.escape(fold(c)) for c in source)
    # The text is in lower case: a pattern in lower case needs no IGNORECASE, which would cost the regex
    # engine its literal-prefix search (up to 20x slower). Escapes and group names are not literal letters.
    flags = re.IGNORECASE if re.search(r"[A-Z]", re.sub(r"\\.|\(\?P[<=]\w+>?", "", folded)) else 0
    try:
        bare = re.compile(folded, flags)
        # A match must not end inside a word (a match that ends on a letter, followed by a letter); that it
        # does not start inside one is checked by the scan (see _regex_scan: a look-behind here would be
        # slow).
        bounded = re.compile(rf"(?:{folded})(?:(?<!\w)|(?!\w))", flags)
    except re.error as exc:
        raise ValueError(f"bad regular expression {source!r}: {exc}") from None
    if bare.match("") is not None:
        raise ValueError(f"regular expression {source!r} matches the empty text")
    return bounded


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"  # what \w matches


def _regex_scan(rx: re.Pattern[str], folded: str) -> Iterator[tuple[int, int]]:
    """Matches of an `re:` term that do not start inside a word."""
    pos = 0
    while (m := rx.search(folded, pos)) is not None:
        start, end = m.span()
        if start > 0 and _is_word(folded[start - 1]) and _is_word(folded[start]):
            pos = start + 1  # inside a word: look again from the next character
            continue
        yield start, end
        pos = max(end, start + 1)


Occurrence = tuple[int, int, int]  # (start, end) in the folded text, index of the term
Span = tuple[int, int]  # (start, end) in the folded text


# Scanning. An article is scanned once for all the plain terms of all topics (_Lexicon.find: every place
# where each term matches, overlapping matches included); then each list of terms (a topic's `any:`, its
# `ignore:`...) takes from those places the occurrences that scanning the text with the list's own
# alternation regex would find: leftmost first, non-overlapping, the first alternative that matches at a
# place deciding the match's end. Scanning once per list cost ~8 passes over the text per article.


@dataclass(frozen=True, slots=True)
class _Finder:
    """Where any of a set of terms matches, in one regex pass; then which terms match there.

    The terms that must start at a word start (`(?<!\\w)`, checked once for all) and those of unspaced
    scripts have a finder each. `any_term` is the alternation of all the terms, grouped by their first
    character (so that at a word start the regex engine tries one group, not hundreds of terms); it finds the
    few places where some term matches, and there only the terms that begin with the text's next one or two
    characters are tried."""

    any_term: re.Pattern[str]
    first_two: dict[str, tuple[int, ...]]  # the term's first two characters, literal -> pattern ids
    first_one: dict[str, tuple[int, ...]]  # terms with only one literal first character
    others: tuple[
        int, ...
    ]  # terms starting with an optional character ("'s-Hertogenbosch"): tried everywhere

    def find(self, folded: str, patterns: Sequence[re.Pattern[str]], found: dict[int, list[Span]]) -> None:
        search = self.any_term.search
        pos = 0
        while (m := search(folded, pos)) is not None:
            start = m.start()
            ids = (
                self.first_two.get(folded[start : start + 2], ()),
                self.first_one.get(folded[start], ()),
                self.others,
            )
            for pid in (pid for group in ids for pid in group):
                hit = patterns[pid].match(folded, start)
                if hit is not None:
                    found.setdefault(pid, []).append((start, hit.end()))
            pos = start + 1  # terms may also match inside this match ("Kim" in "Kim Jong-un")


@dataclass(frozen=True, slots=True)
class _Lexicon:
    """Every plain term of a matcher, each compiled once (pattern id = index), and their finders."""

    patterns: tuple[re.Pattern[str], ...]
    finders: tuple[_Finder, ...]

    def find(self, folded: str) -> dict[int, list[Span]]:
        """Pattern id -> every (start, end) where it matches, leftmost first (only the ids that match)."""
        found: dict[int, list[Span]] = {}
        for finder in self.finders:
            finder.find(folded, self.patterns, found)
        return found


_BLOCK = 16  # first characters per block of the finder's alternation (see _LexiconBuilder._finder)


class _LexiconBuilder:
    """Collects the plain terms while the topics are compiled, one pattern id per distinct pattern."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        # per pattern id: (whether it starts at a word start, the pattern without that check, literal start)
        self.terms: list[tuple[bool, str, str]] = []

    def add(self, term: str) -> tuple[int, bool]:
        """(the term's pattern id, whether it must start at a word start)."""
        bounded, body = _term_pattern(term)
        pattern = (r"(?<!\w)" if bounded else "") + body
        if pattern not in self.ids:
            self.ids[pattern] = len(self.terms)
            self.terms.append((bounded, body, _literal_start(term)))
        return self.ids[pattern], bounded

    def build(self) -> _Lexicon:
        patterns = tuple(re.compile(p) for p in self.ids)
        finders = []
        for bounded in (True, False):
            ids = [pid for pid, (b, _, _) in enumerate(self.terms) if b == bounded]
            if ids:
                finders.append(self._finder(bounded, ids))
        return _Lexicon(patterns, tuple(finders))

    def _finder(self, bounded: bool, ids: list[int]) -> _Finder:
        groups: dict[str, list[str]] = {}  # first character -> the rest of each term's pattern
        others: list[str] = []
        first_two: dict[str, list[int]] = {}
        first_one: dict[str, list[int]] = {}
        others_ids: list[int] = []
        for pid in ids:
            _, body, literal = self.terms[pid]
            head = literal[:1]
            if head and body.startswith(re.escape(head)):
                groups.setdefault(head, []).append(body[len(re.escape(head)) :])
                (first_two if len(literal) > 1 else first_one).setdefault(literal[:2], []).append(pid)
            else:
                others.append(body)
                others_ids.append(pid)
        # Word-start terms: the groups in blocks of neighbouring first characters, each behind a look-ahead
        # for its range, so that a word start tries a few blocks (a Latin word skips the Cyrillic and Hangul
        # ones at once), not ~100 groups one after the other (~40% faster). Unspaced terms: one block, as
        # an alternation of literals lets the regex engine skip to the characters that start one.
        heads = sorted(groups)
        size = _BLOCK if bounded else max(len(heads), 1)
        blocks = [heads[i : i + size] for i in range(0, len(heads), size)]
        alternatives = [
            (f"(?=[{re.escape(block[0])}-{re.escape(block[-1])}])" if bounded else "")
            + "(?:"
            + "|".join(f"{re.escape(h)}(?:{'|'.join(groups[h])})" for h in block)
            + ")"
            for block in blocks
        ] + others
        union = f"(?:{'|'.join(alternatives)})"
        return _Finder(
            re.compile(r"(?<!\w)" + union if bounded else union),
            {k: tuple(v) for k, v in first_two.items()},
            {k: tuple(v) for k, v in first_one.items()},
            tuple(others_ids),
        )


def _literal_start(term: str) -> str:
    """The first characters of a plain term's pattern that match only themselves (up to 2): every match of
    the term starts with them. "-" and "'" are not literal (optional), nor the `*` of a prefix."""
    first = fold(term).split()[0].rstrip("*")
    literal = ""
    for c in first[:2]:
        if c in "-'":
            break
        literal += c
    return literal


@dataclass(frozen=True, slots=True)
class _Terms:
    """A list of terms (a topic's `any:`, `none:`, `ignore:`, or one `all:` or `near:` term). It finds what
    one regex of its plain terms' alternation would ("(?<!\\w)(?:a|b|...)|(?:unspaced...)": non-overlapping,
    leftmost first, at one place the first alternative that matches giving the end and the first term in
    config order that matches giving the term), but from the places _Lexicon.find found for every term of
    every topic at once; `re:` terms are scanned on their own (once per article each, see _Doc)."""

    terms: tuple[str, ...]
    # pattern id -> (its rank among the list's alternatives: the word-start terms first; its term index). Two
    # terms of a list with the same pattern ("Mexico", "México") match alike: the lowest of each is kept.
    ranks: dict[int, tuple[int, int]] = field(compare=False)
    regex: tuple[tuple[int, re.Pattern[str]], ...]  # (term index, compiled pattern) of the `re:` terms

    @classmethod
    def compile(cls, terms: Sequence[str], lexicon: _LexiconBuilder) -> _Terms:
        terms = tuple(dict.fromkeys(terms))
        regex = []
        bounded: list[tuple[int, int]] = []  # (pattern id, term index), in config order
        unbounded: list[tuple[int, int]] = []
        for i, term in enumerate(terms):
            if term.startswith(REGEX_PREFIX):
                regex.append((i, _compile_regex(term[len(REGEX_PREFIX) :])))
                continue
            pid, at_word_start = lexicon.add(term)
            (bounded if at_word_start else unbounded).append((pid, i))
        ranks: dict[int, tuple[int, int]] = {}
        for rank, (pid, i) in enumerate(bounded + unbounded):
            first_rank, first_i = ranks.get(pid, (rank, i))
            ranks[pid] = (min(rank, first_rank), min(i, first_i))
        return cls(terms, ranks, tuple(regex))

    def scan(self, doc: _Doc) -> list[Occurrence]:
        """Non-overlapping occurrences, leftmost first."""
        found = self._plain(doc.places())
        if self.regex:
            for i, rx in self.regex:
                found.extend((start, end, i) for start, end in doc.regex_matches(rx))
            found.sort(key=lambda o: (o[0], -o[1]))
            kept: list[Occurrence] = []
            for occ in found:
                if not kept or occ[0] >= kept[-1][1]:
                    kept.append(occ)
            found = kept
        return found

    def _plain(self, places: Mapping[int, list[Span]]) -> list[Occurrence]:
        at: dict[
            int, list[int]
        ] = {}  # start -> [rank of the first alternative matching there, its end, term]
        for pid, spans in places.items():
            if (ranks := self.ranks.get(pid)) is None:
                continue
            rank, i = ranks
            for start, end in spans:
                best = at.get(start)
                if best is None:
                    at[start] = [rank, end, i]
                    continue
                if rank < best[0]:
                    best[0], best[1] = rank, end
                best[2] = min(best[2], i)
        found: list[Occurrence] = []
        resume = 0  # the regex resumes its search where its last match ended
        for start in sorted(at):
            if start >= resume:
                _, end, i = at[start]
                found.append((start, end, i))
                resume = end
        return found


@dataclass(frozen=True, slots=True)
class _Near:
    parts: tuple[_Terms, ...]  # one per term: each must be found on its own
    within: int


@dataclass(frozen=True, slots=True)
class _Topic:
    name: str
    any_: _Terms | None
    min_count: int
    all_: tuple[_Terms, ...]  # one per term: each must be found on its own
    near: tuple[_Near, ...]
    none: _Terms | None
    ignore: _Terms | None
    all_topics: tuple[str, ...]
    in_title: bool
    in_text: bool


@dataclass(frozen=True, slots=True)
class TopicMatcher:
    """Compiled topic rules, components before the composites that use them. Picklable (for process pools)."""

    topics: tuple[_Topic, ...]
    lexicon: _Lexicon  # every plain term of every topic, to scan an article once for all of them

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
    cache: dict[tuple[str, ...], _Terms] = {}  # the same list (a shared `none:`) is scanned once per article
    lexicon = _LexiconBuilder()

    def terms(items: Sequence[str]) -> _Terms | None:
        key = tuple(dict.fromkeys(items))
        if not key:
            return None
        if key not in cache:
            cache[key] = _Terms.compile(key, lexicon)
        return cache[key]

    def single(term: str) -> _Terms:
        compiled = terms([term])
        assert compiled is not None
        return compiled

    compiled = []
    for name in order:
        d = defs[name]
        compiled.append(
            _Topic(
                name=name,
                any_=terms(d.any_),
                min_count=d.min_count,
                all_=tuple(single(t) for t in dict.fromkeys(d.all_)),
                near=tuple(
                    _Near(tuple(single(t) for t in dict.fromkeys(c.terms)), d.near_within(c)) for c in d.near
                ),
                none=terms(d.none),
                ignore=terms(d.ignore),
                all_topics=tuple(d.all_topics),
                in_title="title" in d.in_,
                in_text="text" in d.in_,
            )
        )
    return TopicMatcher(tuple(compiled), lexicon.build())


# --- one article ------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
# A sentence ends at a line break, or at . ! ? … (and closing quotes) followed by a space; in Chinese and
# Japanese at 。！？ with or without a space.
_SENTENCE_END = re.compile(
    r"[.!?\u2026]+[\"'\u201d\u2019\u00bb)\]]*\s+|[\u3002\uff01\uff1f]+[\u300d\u300f)]*\s*|\s*\n\s*"
)
_LAST_WORD = re.compile(r"(\w+)$")
# A period after these does not end a sentence ("Gen. Smith", "No. 5"); nor after one letter ("U.S. forces").
# fmt: off
_ABBREVIATIONS = frozenset((
    "mr", "mrs", "ms", "dr", "prof", "st", "gen", "col", "lt", "sgt", "capt", "cmdr", "adm", "gov", "sen",
    "rep", "pres", "jr", "sr", "sra", "dra", "no", "nr", "vs", "etc", "inc", "ltd", "corp", "co", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "approx", "dept", "univ",
))
# fmt: on


class _Doc:
    """One article prepared for matching: the original text (title, blank line, body), its folded copy, and
    (made when first needed) the folded -> original offset map, the sentence starts and the word starts."""

    __slots__ = (
        "_pieces",
        "_places",
        "_regex",
        "_sentences",
        "_starts",
        "_words",
        "folded",
        "lexicon",
        "original",
        "scans",
        "title_end",
    )

    def __init__(self, title: str, text: str, lexicon: _Lexicon):
        title = unicodedata.normalize("NFC", title)
        self.original = f"{title}\n\n{unicodedata.normalize('NFC', text)}"
        self._pieces: list[str] | None = None
        if self.original.isascii():
            self.folded = self.original.lower().replace("`", "'")
            self.title_end = len(title)
        else:
            self._pieces = list(map(_FOLD.__getitem__, self.original))
            self.folded = "".join(self._pieces)
            self.title_end = sum(map(len, self._pieces[: len(title)]))
        self._starts: list[int] | None = None
        self._sentences: list[int] | None = None
        self._words: list[int] | None = None
        self.scans: dict[int, list[Occurrence]] = {}  # id(_Terms) -> its occurrences
        self.lexicon = lexicon
        self._places: dict[int, list[Span]] | None = None
        self._regex: dict[re.Pattern[str], list[Span]] = {}

    def scan(self, terms: _Terms) -> list[Occurrence]:
        key = id(terms)
        if key not in self.scans:
            self.scans[key] = terms.scan(self)
        return self.scans[key]

    def places(self) -> dict[int, list[Span]]:
        """Where every plain term of the matcher matches (see _Lexicon.find), found when first needed."""
        if self._places is None:
            self._places = self.lexicon.find(self.folded)
        return self._places

    def regex_matches(self, rx: re.Pattern[str]) -> list[Span]:
        """The matches of an `re:` term (one may be in several lists: `ignore:` of two topics)."""
        if rx not in self._regex:
            self._regex[rx] = list(_regex_scan(rx, self.folded))
        return self._regex[rx]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """A folded span's span in the original text."""
        if self._pieces is None:
            return start, end
        if self._starts is None:
            # starts[i] = where original character i begins in the folded text
            self._starts = list(accumulate(map(len, self._pieces), initial=0))
        first = bisect_right(self._starts, start) - 1
        last = bisect_right(self._starts, max(end - 1, start)) - 1
        return first, last + 1

    def sentence(self, start: int, end: int) -> str:
        """The sentence of the original text in which the folded span lies, cut to about SENTENCE_CHARS."""
        text = self.original
        a, b = self.to_original(start, end)
        if self._sentences is None:
            self._sentences = _sentence_starts(text)
        i = bisect_right(self._sentences, a) - 1
        s = self._sentences[i]
        e = self._sentences[i + 1] if i + 1 < len(self._sentences) else len(text)
        return _cut(text[s:e], a - s, b - s)

    def word_span(self, start: int, end: int) -> tuple[int, int]:
        """Indexes of the first and last word of a folded span (words = runs of letters and digits)."""
        if self._words is None:
            self._words = [m.start() for m in _WORD.finditer(self.folded)]
        first = bisect_left(self._words, start)
        return first, max(first, bisect_left(self._words, end) - 1)


def _sentence_starts(text: str) -> list[int]:
    starts = [0]
    for m in _SENTENCE_END.finditer(text):
        end = m.end()
        if end >= len(text):
            break
        if text[m.start()] == "." and "\n" not in m.group() and not _period_ends(text, m.start(), end):
            continue
        starts.append(end)
    return starts


def _period_ends(text: str, dot: int, after: int) -> bool:
    if text[after].islower():
        return False
    word = _LAST_WORD.search(text[max(0, dot - 20) : dot])
    return not (word and (len(word.group(1)) == 1 or word.group(1).lower() in _ABBREVIATIONS))


def _cut(sentence: str, start: int, end: int) -> str:
    """The sentence with its white space collapsed; a long one cut to SENTENCE_CHARS around [start, end)."""
    if len(sentence.strip()) <= SENTENCE_CHARS:
        return " ".join(sentence.split())
    room = max(SENTENCE_CHARS - (end - start), 0)
    a = max(0, start - room // 2)
    b = min(len(sentence), max(end, a + SENTENCE_CHARS))
    a = max(0, min(a, b - SENTENCE_CHARS))
    if a > 0:  # start and end on word edges
        space = sentence.find(" ", a, start)
        a = space + 1 if space >= 0 else a
    if b < len(sentence):
        space = sentence.rfind(" ", end, b)
        b = space if space >= 0 else b
    clip = " ".join(sentence[a:b].split())
    return ("…" if a > 0 else "") + clip + ("…" if b < len(sentence.rstrip()) else "")


# --- evaluating one topic ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Hit:
    """What one term (or a composite's part) found: the evidence, before it is written out."""

    term: str
    count: int
    in_title: int  # how many of the matches are in the title
    start: int  # first match, folded span
    end: int
    sentence: str | None = None  # given for parts of composites (taken from the part's own evidence)

    def as_dict(self, doc: _Doc) -> dict[str, Any]:
        sentence = self.sentence if self.sentence is not None else doc.sentence(self.start, self.end)
        where = "title" if self.start < doc.title_end else "text"
        return {"term": self.term, "count": self.count, "sentence": sentence, "where": where}


@dataclass(slots=True)
class TopicVerdict:
    """The outcome of one topic's rule on one article, with everything `crawler explain` shows."""

    name: str
    flagged: bool
    by_source: bool = False
    score: float = 0.0
    evidence: list[dict[str, Any]] = field(default_factory=list)  # as in the sidecar
    problems: list[str] = field(default_factory=list)  # the conditions that failed
    ignored: list[dict[str, Any]] = field(default_factory=list)  # `ignore:` phrases that occurred
    hits: list[_Hit] = field(default_factory=list)
    defined: bool = True  # False for a source topic that topics.yaml does not define


def _where(doc: _Doc, topic: _Topic, found: list[Occurrence]) -> list[Occurrence]:
    """The occurrences in the topic's `in:` part of the article and outside its `ignore:` phrases."""
    if not found:
        return found
    ignore = doc.scan(topic.ignore) if topic.ignore is not None else []  # only scanned when needed
    kept = []
    for occ in found:
        start, end, _ = occ
        if start < doc.title_end < end:
            continue  # across the title and the text: a phrase of neither
        if not (topic.in_title if start < doc.title_end else topic.in_text):
            continue
        if any(s < end and start < e for s, e, _ in ignore):
            continue
        kept.append(occ)
    return kept


def _hits(doc: _Doc, terms: _Terms, found: list[Occurrence]) -> list[_Hit]:
    """One _Hit per term that occurred, in config order."""
    by_term: dict[int, _Hit] = {}
    for start, end, i in found:
        hit = by_term.get(i)
        if hit is None:
            by_term[i] = _Hit(terms.terms[i], 1, int(start < doc.title_end), start, end)
        else:
            hit.count += 1
            hit.in_title += start < doc.title_end
    return [by_term[i] for i in sorted(by_term)]


def _near_gap(spans: list[list[tuple[int, int]]]) -> int | None:
    """Fewest words between one occurrence of each term, given each term's occurrences as word spans
    (first, last); None when a term has none. For each occurrence, the latest one of every other term before
    it makes the tightest window ending there."""
    events = sorted((first, last, k) for k, term_spans in enumerate(spans) for first, last in term_spans)
    latest: dict[int, tuple[int, int]] = {}
    best: int | None = None
    for first, last, k in events:
        latest[k] = (first, last)
        if len(latest) == len(spans):
            low = min(f for f, _ in latest.values())
            high = max(la for _, la in latest.values())
            covered = sum(la - f + 1 for f, la in latest.values())
            gap = max(0, high - low + 1 - covered)
            best = gap if best is None else min(best, gap)
    return best


def _evaluate(topic: _Topic, doc: _Doc, done: Mapping[str, TopicVerdict], full: bool) -> TopicVerdict:
    """The verdict of the topic's own rule. Unless `full`, stops at the first condition that fails."""
    verdict = TopicVerdict(topic.name, flagged=False)
    problems = verdict.problems
    missing = [ref for ref in topic.all_topics if not done[ref].flagged]
    problems += [f"composite part missing: {ref} is not flagged" for ref in missing]
    if problems and not full:
        return verdict
    if full and topic.ignore is not None:
        verdict.ignored = [h.as_dict(doc) for h in _hits(doc, topic.ignore, doc.scan(topic.ignore))]
    hits: list[_Hit] = []
    if topic.any_ is not None:
        found = _where(doc, topic, doc.scan(topic.any_))
        # A headline names what the article is about, so a term there counts twice towards min_count.
        count = sum(2 if start < doc.title_end else 1 for start, _, _ in found)
        if not found:
            problems.append("no `any` term found")
        elif count < topic.min_count:
            problems.append(
                f"min_count not reached ({count} of {topic.min_count}; a title match counts twice)"
            )
        hits += _hits(doc, topic.any_, found)
        if problems and not full:
            return verdict
    for terms in topic.all_:
        found = _where(doc, topic, doc.scan(terms))
        if not found:
            problems.append(f"`all` term missing: {terms.terms[0]!r}")
            if not full:
                return verdict
        hits += _hits(doc, terms, found)
    for clause in topic.near:
        spans = []
        for terms in clause.parts:
            found = _where(doc, topic, doc.scan(terms))
            hits += _hits(doc, terms, found)
            spans.append([doc.word_span(start, end) for start, end, _ in found])
        gap = _near_gap(spans)
        names = ", ".join(repr(t.terms[0]) for t in clause.parts)
        if gap is None:
            absent = ", ".join(repr(t.terms[0]) for t, s in zip(clause.parts, spans, strict=True) if not s)
            problems.append(
                f"proximity not satisfied: near [{names}] within {clause.within}: {absent} not found"
            )
        elif gap > clause.within:
            problems.append(
                f"proximity not satisfied: near [{names}] within {clause.within}: closest {gap} words apart"
            )
        if problems and not full:
            return verdict
    if topic.none is not None:
        found = _where(doc, topic, doc.scan(topic.none))
        for hit in _hits(doc, topic.none, found):
            problems.append(
                f'`none` term present: {hit.term!r} ({hit.count}x): "{doc.sentence(hit.start, hit.end)}"'
            )
    # One entry per term even when it is in several lists; parts of a composite after the terms.
    unique = list({h.term: h for h in reversed(hits)}.values())[::-1]
    score = sum(h.in_title * TITLE_WEIGHT + (h.count - h.in_title) * TEXT_WEIGHT for h in unique)
    parts = [done[ref] for ref in topic.all_topics if ref not in missing]
    if parts:
        score += min(p.score for p in parts)
    unique += [_part_hit(p) for p in parts]
    verdict.hits = unique
    verdict.score = score
    verdict.flagged = not problems
    return verdict


def _part_hit(part: TopicVerdict) -> _Hit:
    """A composite's evidence for one of its parts: "@part", how many matches the part had and the sentence of
    its earliest one (none for a part set only by the source)."""
    count = sum(h.count for h in part.hits if h.term != SOURCE_EVIDENCE)
    placed = [h for h in part.hits if h.term != SOURCE_EVIDENCE and h.sentence != ""]
    if not placed:
        return _Hit("@" + part.name, count, 0, 0, 0, sentence="")
    first = min(placed, key=lambda h: h.start)
    return _Hit("@" + part.name, count, 0, first.start, first.end, first.sentence)


def _run(
    doc: _Doc, matcher: TopicMatcher, source_topics: Sequence[str], full: bool
) -> dict[str, TopicVerdict]:
    source = list(dict.fromkeys(source_topics))
    done: dict[str, TopicVerdict] = {}
    defined = set(matcher.names)
    for name in source:
        if name not in defined:  # a source may name a topic that no rule defines
            done[name] = _source_verdict(TopicVerdict(name, flagged=False, defined=False), full)
    for topic in matcher.topics:
        verdict = _evaluate(topic, doc, done, full)
        done[topic.name] = _source_verdict(verdict, full) if topic.name in source else verdict
    return done


def _source_verdict(verdict: TopicVerdict, keep_hits: bool) -> TopicVerdict:
    """A topic the source sets: always flagged, "@source" first in its evidence, at least SOURCE_SCORE. The
    terms found are evidence when the topic's own rule holds too (or for `explain`, with keep_hits)."""
    holds = verdict.flagged
    hits = verdict.hits if holds or keep_hits else []
    verdict.hits = [_Hit(SOURCE_EVIDENCE, 1, 0, 0, 0, sentence=""), *hits]
    verdict.score = max(SOURCE_SCORE, verdict.score if holds else 0.0)
    verdict.by_source = True
    verdict.flagged = True
    return verdict


def _evidence(doc: _Doc, verdict: TopicVerdict) -> list[dict[str, Any]]:
    out = []
    for hit in verdict.hits:
        entry = hit.as_dict(doc)
        if hit.sentence == "":  # "@source", or a part set only by its source: found nowhere in the text
            del entry["where"]
        out.append(entry)
    return out


# --- the public verbs -------------------------------------------------------------------------------------


def flag_topics(title: str, text: str, matcher: TopicMatcher, source_topics: Sequence[str] = ()) -> Flags:
    """Topics that the article matches; `text` is the body, without the title line.

    Evidence per topic: SOURCE_EVIDENCE first for the source's own topics (always set, and they count for
    composites), then each matched term in config order as {"term", "count", "sentence", "where"}, then for a
    composite each part as "@name". Scores: see the module docstring."""
    doc = _Doc(title, text, matcher.lexicon)
    verdicts = _run(doc, matcher, source_topics, full=False)
    names = tuple(sorted(name for name, v in verdicts.items() if v.flagged))
    return Flags(
        topics=names,
        evidence={name: _evidence(doc, verdicts[name]) for name in names},
        scores={name: verdicts[name].score for name in names},
    )


def evaluate_topics(
    title: str, text: str, matcher: TopicMatcher, source_topics: Sequence[str] = ()
) -> list[TopicVerdict]:
    """Every topic's verdict with every condition checked (not stopping at the first that fails), in the
    matcher's order, then source topics that no rule defines: what `crawler explain` prints."""
    doc = _Doc(title, text, matcher.lexicon)
    verdicts = _run(doc, matcher, source_topics, full=True)
    for verdict in verdicts.values():
        verdict.evidence = _evidence(doc, verdict)
    order = {name: i for i, name in enumerate(matcher.names)}
    return sorted(verdicts.values(), key=lambda v: order.get(v.name, len(order)))
