"""How each issue-15 figure grows between two `bench/run-all` logs of different sizes.

    .venv/bin/python bench/growth.py var/bench/run-all-100000.log var/bench/run-all-1000000.log

`bench/run-all <leads>` keeps its whole output in ``var/bench/run-all-<leads>.log``. This reads
two such logs, picks out the figures by the exact lines the benches print (seed time; the
scoring publishes and their baseline ratios; the dashboards' raw first views, baseline, first
views of every page × filter key, refresh round and p95 from snapshots; the pipeline review's
first view; /leads/ deep pages; API ingestion; CSV imports and their COPY ratios; the load
average before each bench) and prints one table: figure, value at each size, growth (larger /
smaller). A figure missing from a log prints "—"; a log without any figure is an error.

Plain parsing, no Django: it runs anywhere, on logs copied from another machine.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

MISSING = "—"
NUM = r"\d[\d,]*(?:\.\d+)?"  # as the benches print them: 1,234.5 (thousands separators)


@dataclass(frozen=True)
class Field:
    """One figure a rule's line gives: its name (a template over the line's named groups), the
    group holding the number, its unit, and whether a growth ratio means anything."""

    name: str
    group: str
    unit: str
    grows: bool = True


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    text: str  # the number as printed
    unit: str
    grows: bool
    order: tuple[int, int, int]  # rule, first line giving it, field of that line


@dataclass
class Log:
    path: str
    leads: int | None
    events: int | None
    figures: dict[str, Figure]


def rule(pattern: str, *fields: Field) -> Rule:
    return Rule(re.compile(pattern.replace("NUM", NUM)), fields)


# In `bench/run-all` order; each pattern is the start of a line one bench prints (its f-string).
RULES: tuple[Rule, ...] = (
    # seed_bench: f"seed_demo {args.leads:,} leads on {backend} (load + scoring): {seconds:.1f} s"
    rule(
        r"^seed_demo (?P<leads>NUM) leads on \w+ \(load \+ scoring\): (?P<s>NUM) s",
        Field("seed_demo with scoring", "s", "s"),
    ),
    # scoring_bench
    rule(
        r"^first full scoring \(re-reads all events\): (?P<s>NUM) s",
        Field("scoring: first full scoring (warm-up)", "s", "s"),
    ),
    rule(
        r"^baseline single UPDATE … FROM \(SELECT … GROUP BY lead_id\): (?P<s>NUM) s",
        Field("scoring: baseline single UPDATE … GROUP BY", "s", "s"),
    ),
    rule(
        r"^publish new event weights ⇒ all leads rescored: (?P<s>NUM) s \(.*?(?P<r>NUM) × baseline",
        Field("publish new event weights, end to end", "s", "s"),
        Field("publish new event weights / baseline", "r", "×"),
    ),
    rule(
        r"^publish a new ICP ⇒ all leads refitted: (?P<s>NUM) s \(.*?(?P<r>NUM) × baseline",
        Field("publish a new ICP, end to end", "s", "s"),
        Field("publish a new ICP / baseline", "r", "×"),
    ),
    rule(
        r"^publish an ICP that tests more .*?: (?P<s>NUM) s \(.*?(?P<r>NUM) × baseline",
        Field("publish an ICP that tests more, end to end", "s", "s"),
        Field("publish an ICP that tests more / baseline", "r", "×"),
    ),
    rule(
        r"^publish a new half-life \(re-reads events\): (?P<s>NUM) s \((?P<r>NUM) × baseline",
        Field("publish a new half-life, end to end", "s", "s"),
        Field("publish a new half-life / baseline", "r", "×"),
    ),
    rule(
        r"^peak worker RSS during full recomputes: (?P<mb>NUM) MB",
        Field("scoring: peak worker RSS", "mb", "MB"),
    ),
    rule(
        r"^incremental, event ⇒ score visible, \d+ events, one worker: "
        r"p50 (?P<p50>NUM) ms, p95 (?P<p95>NUM) ms",
        Field("incremental event ⇒ score visible, p95", "p95", "ms"),
    ),
    # handoff_bench
    rule(
        r"^sales queue \(\d+ open handoffs, page of 50\): p50 (?P<p50>NUM) ms, p95 (?P<p95>NUM) ms",
        Field("sales queue, p95", "p95", "ms"),
    ),
    rule(
        r"^breach sweep, (?P<label>.+?): \d+ run\(s\), slowest (?P<s>NUM) s, all (?P<all>NUM) s",
        Field("breach sweep, {label}: slowest run", "s", "s"),
    ),
    # dashboard_bench
    rule(
        r"^rollups refreshed as beat would \((?P<s>NUM) s\)",
        Field("dashboards: rollups refreshed first", "s", "s"),
    ),
    rule(
        r"^\s+baseline (?P<label>.+): (?P<ms>NUM) ms$",
        Field("dashboards' baseline: {label}", "ms", "ms"),
    ),
    rule(
        r"^baseline, plain SQL aggregates on raw tables: (?P<ms>NUM) ms in all",
        Field("dashboards' baseline, plain SQL aggregates in all", "ms", "ms"),
    ),
    rule(
        r"^raw \(no snapshot\) (?P<page>\S+): (?P<ms>NUM) ms \((?P<r>NUM) × baseline\)",
        Field("first view {page} (raw, no snapshot)", "ms", "ms"),
        Field("first view {page} / baseline", "r", "×"),
    ),
    rule(
        r"^first view of \d+ page × filter keys: (?P<s>NUM) s in all",
        Field("first views of all page × filter keys", "s", "s"),
    ),
    rule(
        r"^first views of (?P<page>\S+) over \d+ filter sets nobody opened: "
        r"p50 (?P<p50>NUM) ms, max (?P<max>NUM) ms",
        Field("first views of {page}, filter sets nobody opened: p50", "p50", "ms"),
        Field("first views of {page}, filter sets nobody opened: max", "max", "ms"),
    ),
    rule(
        r"^one refresh round of (?P<n>\d+) hot snapshots[^:]*: (?P<s>NUM) s of worker time",
        Field("snapshot refresh round, worker time", "s", "s"),
        Field("snapshots refreshed in a round", "n", "snapshots"),
    ),
    rule(
        r"^dashboard pages from snapshots, \d+ requests: p50 (?P<p50>NUM) ms, p95 (?P<p95>NUM) ms",
        Field("dashboard pages from snapshots, p95", "p95", "ms"),
    ),
    rule(
        r"^pipeline review page: first view (?P<ms>NUM) ms, then p50 (?P<p50>NUM) ms, "
        r"p95 (?P<p95>NUM) ms",
        Field("pipeline review (/meeting/) first view", "ms", "ms"),
        Field("pipeline review (/meeting/) p95", "p95", "ms"),
    ),
    # lead_list_bench
    rule(
        r"^/leads/ page 2,000, (?P<label>.+?): cold (?P<cold>NUM) ms, "
        r"warm p50 (?P<p50>NUM) / p95 (?P<p95>NUM) ms; .*"
        r"baseline COUNT \+ OFFSET (?P<base>NUM) ms",
        Field("/leads/ page 2,000, {label}: cold", "cold", "ms"),
        Field("/leads/ page 2,000, {label}: warm p50", "p50", "ms"),
        Field("/leads/ page 2,000, {label}: baseline COUNT + OFFSET", "base", "ms"),
    ),
    # api_ingest_bench
    rule(
        r"^\s+=> (?P<rate>NUM) events/s",
        Field("API ingestion", "rate", "events/s"),
    ),
    rule(
        r"^\s+request latency p50 (?P<p50>NUM) ms, p95 (?P<p95>NUM) ms",
        Field("API request latency (a batch), p95", "p95", "ms"),
    ),
    rule(
        r"^COPY: (?P<rows>NUM) rows in (?P<s>NUM) s => (?P<rate>NUM) rows/s",
        Field("API bench: COPY of the same rows", "rate", "rows/s"),
    ),
    rule(
        r"^ratio API / COPY: (?P<r>NUM)",
        Field("API ingestion / COPY", "r", "×"),
    ),
    # import_bench: its summary table, f"{kind:8} {rows:>9,} {import_rate:>14,.0f} …  {verdict}"
    rule(
        r"^(?P<kind>events|leads) +(?P<rows>NUM) +(?P<rate>NUM) +(?P<copy>NUM) +(?P<r>NUM) "
        r"+NUM  (?:met|missed)",
        Field("CSV import {kind}", "rate", "rows/s"),
        Field("CSV import {kind}: COPY", "copy", "rows/s"),
        Field("CSV import {kind} / COPY", "r", "×"),
    ),
    rule(
        r"^\s+COPY of every row the import writes \(leads, history, score states\): "
        r"(?P<rate>NUM) leads/s",
        Field("CSV import leads: COPY of every row it writes", "rate", "leads/s"),
    ),
    rule(
        r"^Re-import of NUM events received before \(nothing written\): (?P<rate>NUM) rows/s",
        Field("CSV re-import of events received before", "rate", "rows/s"),
    ),
    # bench/run-all's own lines: the load average before each bench (no growth: the machine's).
    rule(
        r"^== load: (?P<load>NUM) NUM NUM \(1, 5, 15 min\)",
        Field("load average (1 min) before seed_bench", "load", "", grows=False),
    ),
    rule(
        r"^== (?P<bench>\w+) \(load (?P<load>NUM)\)",
        Field("load average (1 min) before {bench}", "load", "", grows=False),
    ),
    rule(
        r"^== done \(load (?P<load>NUM) NUM NUM\)",
        Field("load average (1 min) at the end", "load", "", grows=False),
    ),
)

SEED_SIZE = re.compile(RULES[0].pattern.pattern)
DATA_LINE = re.compile(rf"^data: (?P<leads>{NUM}) leads, (?P<events>{NUM}) events;")


def number(text: str) -> float:
    return float(text.replace(",", ""))


def parse(text: str, path: str = "") -> Log:
    """Every figure the lines of ``text`` give (a figure printed twice: the last one)."""
    leads = events = None
    figures: dict[str, Figure] = {}
    seen = 0
    for line in text.splitlines():
        line = line.rstrip("\r")
        if match := SEED_SIZE.match(line):
            leads = int(number(match["leads"]))
        if match := DATA_LINE.match(line):
            events = int(number(match["events"]))
        for rule_index, one in enumerate(RULES):
            match = one.pattern.match(line)
            if not match:
                continue
            seen += 1
            for field_index, field in enumerate(one.fields):
                name = field.name.format(**match.groupdict())
                earlier = figures.get(name)
                order = earlier.order if earlier else (rule_index, seen, field_index)
                figures[name] = Figure(
                    name,
                    number(match[field.group]),
                    match[field.group],
                    field.unit,
                    field.grows,
                    order,
                )
            break
    return Log(path, leads, events, figures)


def growth(smaller: Figure | None, larger: Figure | None) -> str:
    """Larger / smaller; blank for a figure whose ratio means nothing (the load average)."""
    if smaller is None or larger is None or smaller.value == 0:
        return MISSING
    if not smaller.grows:
        return ""
    ratio = larger.value / smaller.value
    return f"{ratio:.1f} ×" if ratio >= 10 else f"{ratio:.2f} ×"


def shown(figure: Figure | None) -> str:
    if figure is None:
        return MISSING
    return f"{figure.text} {figure.unit}".rstrip()


def heading(log: Log) -> str:
    if log.leads is None:
        return Path(log.path).name or "?"
    size = f"{log.leads:,} leads"
    return f"{size}, {log.events:,} events" if log.events is not None else size


def table(smaller: Log, larger: Log) -> list[str]:
    """The growth table, one Markdown row a figure, in the benches' order."""
    orders: dict[str, tuple[int, int, int]] = {}
    for log in (larger, smaller):
        for name, figure in log.figures.items():
            orders.setdefault(name, figure.order)
    lines = []
    if smaller.leads and larger.leads:
        lines.append(
            f"Growth from {smaller.leads:,} to {larger.leads:,} leads "
            f"({larger.leads / smaller.leads:.1f} × the leads), larger / smaller:"
        )
        lines.append("")
    lines.append(f"| figure | {heading(smaller)} | {heading(larger)} | growth |")
    lines.append("|---|---|---|---|")
    for name in sorted(orders, key=orders.__getitem__):
        small, large = smaller.figures.get(name), larger.figures.get(name)
        lines.append(f"| {name} | {shown(small)} | {shown(large)} | {growth(small, large)} |")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: bench/growth.py <smaller.log> <larger.log>", file=sys.stderr)
        return 2
    logs = []
    for path in argv:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            print(f"bench/growth.py: cannot read {path}: {error}", file=sys.stderr)
            return 2
        log = parse(text, path)
        if not any(figure.grows for figure in log.figures.values()):
            print(
                f"bench/growth.py: no benchmark figures in {path} (expected the output of "
                f"bench/run-all: a seed_demo line, the benches' result lines)",
                file=sys.stderr,
            )
            return 1
        logs.append(log)
    smaller, larger = logs
    if smaller.leads and larger.leads and smaller.leads > larger.leads:
        smaller, larger = larger, smaller
    print("\n".join(table(smaller, larger)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
