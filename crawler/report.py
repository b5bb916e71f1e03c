"""What `crawler poll` shows: progress while it runs and a per-source summary at the end."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crawler.pipeline import PollReport

# One console for log lines and the progress bar on a terminal, so log lines scroll above the bar.
STDERR = Console(stderr=True)


def one_line(report: PollReport) -> str:
    if report.error:
        line = f"{report.source}: FAILED: {report.error}"
    elif report.unchanged:
        line = f"{report.source}: unchanged since the last poll"
    else:
        line = (
            f"{report.source}: {report.new} new, {report.duplicate} duplicate, {report.failed} failed,"
            f" {report.known} already known" + (f", {report.old} too old" if report.old else "")
        )
    if report.redirected_to:
        line += f" (moved permanently to {report.redirected_to}: update its url in sources.yaml)"
    if report.disabled:
        line += f" (STOPPED: {report.disabled})"
    return line


@contextmanager
def progress(total: int, stream: TextIO = sys.stderr) -> Iterator[Callable[[PollReport], None]]:
    """Yields the callback to call as each source finishes: a bar on a terminal, plain lines otherwise."""
    if not stream.isatty():
        done = 0

        def plain(report: PollReport) -> None:
            nonlocal done
            done += 1
            print(f"[{done}/{total}] {report.source} polled", file=stream, flush=True)

        yield plain
        return
    bar = Progress(
        TextColumn("polling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=STDERR if stream is sys.stderr else Console(file=stream),
        transient=True,
    )
    with bar:
        task = bar.add_task("", total=total)

        def advance(report: PollReport) -> None:
            bar.update(task, advance=1, description=report.source)

        yield advance


def summary(reports: Sequence[PollReport], stream: TextIO = sys.stdout) -> None:
    ordered = sorted(reports, key=lambda r: r.source)
    totals = (sum(r.new for r in reports), sum(r.duplicate for r in reports), sum(r.failed for r in reports))
    failing = sum(1 for r in reports if r.error)
    if not stream.isatty():
        for report in ordered:
            print(one_line(report), file=stream)
            for failure in report.failures:
                print(f"  failed: {failure}", file=stream)
        print(
            f"total: {totals[0]} new, {totals[1]} duplicate, {totals[2]} failed;"
            f" {len(reports)} source(s) polled, {failing} failed",
            file=stream,
        )
        return
    table = Table(title="Poll summary")
    for column in ("source", "new", "duplicate", "failed", "known", "problem"):
        table.add_column(
            column, justify="right" if column in {"new", "duplicate", "failed", "known"} else "left"
        )
    for r in ordered:
        problem = r.error or "; ".join(r.failures[:3]) + (" …" if len(r.failures) > 3 else "")
        if r.unchanged:
            problem = "unchanged since the last poll"
        if r.redirected_to:
            problem += f" moved permanently to {r.redirected_to}"
        if r.disabled:
            problem += f" STOPPED: {r.disabled}"
        table.add_row(r.source, str(r.new), str(r.duplicate), str(r.failed), str(r.known), problem)
    table.add_row("total", *map(str, totals), "", f"{failing} source(s) failed", style="bold")
    Console(file=stream).print(table)


def sources_table(rows: Sequence[dict[str, str]], stream: TextIO = sys.stdout) -> None:
    """`crawler sources`: one row per source, as a table on a terminal and tab-separated lines otherwise."""
    columns = list(rows[0]) if rows else []
    if not stream.isatty():
        print("\t".join(columns), file=stream)
        for row in rows:
            print("\t".join(row.values()), file=stream)
        return
    table = Table(title="Sources")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row.values())
    Console(file=stream).print(table)
