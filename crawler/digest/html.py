"""The digest as one self-contained HTML page (DATA/digests/YYYY-MM-DD.html), from a Jinja2 template.

The packaged template is crawler/templates/digest.html.j2; `digest: template:` in crawler.yaml replaces it
with the user's own. Autoescaping is on for every template, so item text (titles, snippets, source names, URLs
in attributes) cannot add markup to the page; links are kept only for http(s) URLs.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from crawler.digest.build import OTHER, Digest, TopicCount, safe_href
from crawler.digest.markdown import summary_line

PACKAGED = "digest.html.j2"


class DigestTemplateError(Exception):
    """The HTML template cannot be used; the message reads ``FILE:LINE: template: reason``."""


def load_template(path: Path | None = None) -> jinja2.Template:
    """The packaged template, or the one at `path`, compiled; a bad one raises DigestTemplateError.

    A user template can extend the packaged one: {% extends "crawler/digest.html.j2" %} and override its
    blocks (style, header, overview, topics, problems, health, footer).
    """
    packaged = jinja2.PackageLoader("crawler", "templates")
    loader: jinja2.BaseLoader = packaged
    if path is not None:
        if not path.is_file():
            raise DigestTemplateError(f"{path}:0: template: no such file")
        loader = jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(path.parent), jinja2.PrefixLoader({"crawler": packaged})]
        )
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt variable is an error, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["href"] = safe_href
    name = path.name if path is not None else PACKAGED
    try:
        return env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        raise DigestTemplateError(f"{exc.filename or path}:{exc.lineno}: template: {exc.message}") from None
    except (jinja2.TemplateError, OSError, UnicodeDecodeError) as exc:
        raise DigestTemplateError(f"{path or name}:0: template: {_reason(exc)}") from None


def render_html(digest: Digest, template: jinja2.Template | None = None) -> str:
    """The page. Same digest, same bytes: nothing in it depends on the clock."""
    tpl = template if template is not None else load_template()
    context: dict[str, Any] = {
        "digest": digest,
        "day": digest.day,
        "summary": summary_line(digest),
        "chart": bar_chart(digest.counts),
        "other": OTHER,
    }
    try:
        return tpl.render(context)
    except Exception as exc:
        where = _template_frame(exc)
        if where is None:
            raise  # not the template's doing
        raise DigestTemplateError(f"{where[0]}:{where[1]}: template: {_reason(exc)}") from None


def bar_chart(counts: tuple[TopicCount, ...]) -> Markup | None:
    """Items per topic as an inline SVG bar chart, with the day before as a tick on each bar."""
    if not counts:
        return None
    label_w, bar_w, value_w, row_h, top = 150, 300, 70, 24, 8
    highest = max(max(c.count, c.previous or 0) for c in counts) or 1
    legend = any(c.previous is not None for c in counts)
    width, height = label_w + bar_w + value_w, top * 2 + row_h * (len(counts) + legend)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" aria-labelledby="chart-title">',
        '<title id="chart-title">Items per topic (tick: the day before)</title>',
    ]
    for i, c in enumerate(counts):
        y = top + i * row_h
        w = round(bar_w * c.count / highest, 1)
        name = escape(c.name)
        change = f" ({c.change})" if c.change else ""
        parts.append(
            f'<g class="bar"><title>{name}: {c.count}{escape(change)}</title>'
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{name}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w}" height="{row_h - 8}" rx="2"/>'
        )
        if c.previous is not None:
            x = round(label_w + bar_w * c.previous / highest, 1)
            parts.append(f'<line class="before" x1="{x}" x2="{x}" y1="{y + 1}" y2="{y + row_h - 1}"/>')
        parts.append(
            f'<text class="value" x="{label_w + w + 6}" y="{y + 16}">{c.count}{escape(change)}</text></g>'
        )
    if legend:
        y = top + len(counts) * row_h + 16
        parts.append(
            f'<text class="legend" x="{label_w}" y="{y}">bars: this day · '
            f'<tspan class="before">|</tspan> the day before</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # every piece of text in it went through escape()


def _template_frame(exc: BaseException) -> tuple[str, int] | None:
    """The template file and line where a render error arose (Jinja maps its frames to template lines)."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        # Python's own frames are .py files; Jinja's carry the template's file name (or "<template>").
        if not frame.filename.endswith(".py") and not frame.filename.startswith("<frozen"):
            found = (frame.filename, frame.lineno or 0)
    return found


def _reason(exc: BaseException) -> str:
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"template not found: {exc.name}"
    if isinstance(exc, jinja2.TemplateError):
        return str(exc.message or exc)
    return f"{type(exc).__name__}: {exc}"
