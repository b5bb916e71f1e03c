"""The digest as Markdown (DATA/digests/YYYY-MM-DD.md): readable as plain text, safe in a Markdown viewer."""

from __future__ import annotations

import re

from crawler.digest.build import OTHER, Digest, Entry, Report, TopicCount, safe_href


def render_markdown(digest: Digest) -> str:
    lines = [f"# Digest for {digest.day}", "", summary_line(digest)]
    for group in digest.groups:
        lines += ["", f"## {group.name} ({group.count})"]
        for entry in group.entries:
            lines += ["", *_entry(entry)]
        if group.more:
            lines += ["", f"_and {group.more} more_"]
    if digest.failing or digest.failed_items:
        lines += ["", "## Problems", "", *(f"- {_text(p)}" for p in digest.problems)]
    if digest.health:
        lines += ["", "## Source health", "", *(f"- {_text(h)}" for h in digest.health)]
    return "\n".join(lines) + "\n"


def summary_line(digest: Digest) -> str:
    """The line under the title, e.g.

    5 new items (dprk 3 (+2), other 2 (±0)). 4 sources polled, 1 failed; 1 article(s) could not be filed.
    """
    n, polled, failing = digest.total, len(digest.polled), len(digest.failing)
    per_topic = ", ".join(_count(c) for c in digest.counts) or "none flagged"
    return (
        f"{n} new item{'s' if n != 1 else ''} ({per_topic})."
        f" {polled} source{'s' if polled != 1 else ''} polled, {failing} failed"
        + (f"; {digest.failed_items} article(s) could not be filed." if digest.failed_items else ".")
    )


def _count(count: TopicCount) -> str:
    name = OTHER.lower() if count.name == OTHER else count.name
    return f"{name} {count.count}" + (f" ({count.change})" if count.change else "")


def _entry(entry: Entry) -> list[str]:
    meta = [_text(entry.source), f"published {entry.published or 'date unknown'}"]
    if entry.score is not None:
        meta.append(f"score {entry.score:g}")
    if entry.revision_of:
        meta.append(f"updated (earlier version `{entry.revision_of}`)")
    meta.append(f"`{entry.path}`")
    link = safe_href(entry.url)
    title = f"[{_text(entry.title)}]({_destination(link)})" if link else _text(entry.title)
    lines = [f"### {title}", "", " · ".join(meta)]
    if entry.url and not link:
        lines += ["", f"Address (not a web link): {_text(entry.url)}"]
    if entry.also:
        lines += ["", "Also reported by: " + ", ".join(_report(r) for r in entry.also)]
    return [*lines, "", f"> {_text(entry.snippet)}"]


def _report(report: Report) -> str:
    link = safe_href(report.url)
    return f"{_text(report.source)} (<{_destination(link, bare=True)}>)" if link else _text(report.source)


_SPECIAL = re.compile(r"([\\\[\]<`])")


def _text(value: str) -> str:
    """Item text as literal Markdown on one line: link brackets, code and raw HTML ("<script>") escaped.

    Emphasis marks are left alone: at worst they style a word, and escaping them would litter source names
    and URLs (dprk_latam) with backslashes for readers of the plain file.
    """
    return _SPECIAL.sub(r"\\\1", " ".join(value.split()))


def _destination(url: str, bare: bool = False) -> str:
    # A link target with spaces, parentheses or angle brackets would end the link early.
    cleaned = url.replace(" ", "%20").replace("<", "%3C").replace(">", "%3E")
    if bare or not re.search(r"[()]", cleaned):
        return cleaned
    return f"<{cleaned}>"
