"""bench/growth.py reads two `bench/run-all` logs and prints how each figure grows.

The sample logs are built with the f-strings the benches print today (copied from bench/*.py).
Those lines gained fields over time (the ratio to the target before the ratio to the baseline,
the CPU, the stage moves), and the table had silently lost the publishes and the refresh round:
the rules now skip from a line's head to the figures they read, and the samples carry the
fields in between.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "growth.py"


def load_growth():
    spec = importlib.util.spec_from_file_location("bench_growth", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


growth = load_growth()


def run_all_log(
    leads: int,
    *,
    seed: float,
    weights: float,
    icp: float,
    half_life: float | None,
    raw_ms: dict[str, float],
    api_rate: float,
    event_rate: float,
    lead_rate: float,
) -> str:
    """What `bench/run-all <leads>` prints, one line per print of each bench (numbers filled)."""
    baseline = weights * 4
    base_ms = 300.0
    lines = [
        "== load: 1.25 0.98 0.77 (1, 5, 15 min) on 2 cores",
        # seed_bench
        f"seed_demo {leads:,} leads on PostgreSQL (load + scoring): {seed:.1f} s",
        "== scoring_bench (load 1.40)",
        f"data: {leads:,} leads, {leads * 10:,} events; 2 worker(s); load 1.40",
        f"first full scoring (re-reads all events): {weights * 2:.2f} s (load 1.51)",
        f"baseline single UPDATE … FROM (SELECT … GROUP BY lead_id): {baseline:.2f} s (load 1.6)",
        f"publish new event weights ⇒ all leads rescored: {weights:.2f} s "
        f"({weights / 10:.2f} × the 10 s target; {weights / baseline:.3f} × baseline; "
        f"CPU {weights * 1.5:.1f} s (workers + their database sessions); {6_254:,} stage moves; "
        f"load 1.7)",
        f"  again: {weights * 1.1:.2f} s ({weights * 1.1 / 10:.2f} × the 10 s target; "
        f"{weights * 1.1 / baseline:.3f} × baseline; CPU 9.9 s (workers + their database "
        f"sessions); 6,236 stage moves; load 1.7)",
        f"publish a new ICP ⇒ all leads refitted: {icp:.2f} s "
        f"({icp / 10:.2f} × the 10 s target; {icp / baseline:.3f} × baseline; "
        f"CPU {icp * 1.5:.1f} s (workers + their database sessions); {10_065:,} stage moves, "
        f"≥ {39_181:,} leads changed tier; load 1.8)",
        f"publish an ICP that tests more (an industry added) ⇒ all leads refitted from their "
        f"facts: {icp * 2:.2f} s ({icp * 2 / 10:.2f} × the 10 s target; "
        f"{icp * 2 / baseline:.3f} × baseline; CPU {icp * 3:.1f} s (workers + their database "
        f"sessions); {2_004:,} stage moves, ≥ {1_181:,} leads changed tier; load 1.8)",
    ]
    if half_life is not None:
        lines.append(
            f"publish a new half-life (re-reads events): {half_life:.2f} s "
            f"({half_life / baseline:.2f} × baseline; target ≤ 1.3 ×; load 1.9)"
        )
    lines += [
        f"peak worker RSS during full recomputes: {230:.0f} MB (target ≤ 300 MB)",
        f"incremental, event ⇒ score visible, 300 events, one worker: "
        f"p50 {69:.0f} ms, p95 {112:.0f} ms (target p95 ≤ 1000 ms; load 1.2)",
        "== handoff_bench (load 2.05)",
        f"added {147_000:,} open handoffs for 20 bench reps in {12.3:.1f} s",
        f"open handoffs: {150_000:,}",
        f"sales queue (200 open handoffs, page of 50): p50 {149.0:.1f} ms, "
        f"p95 {193.0:.1f} ms over 50 requests, 10 queries; p95 / target 200 ms = 0.96",
        f"breach sweep, steady state, ~1 % newly due: 1 run(s), slowest {0.49:.2f} s, "
        f"all {0.49:.2f} s ({1_320:,} response + {0:,} accept breaches, {1_320:,} "
        f"notifications); slowest run / target 2 s = 0.25",
        "== dashboard_bench (load 2.50)",
        f"added {0:,} open opportunities",
        "tidied as beat would (3.2 s): {}",
        f"rollups refreshed as beat would ({14.8:.1f} s): "
        "{RollupFact.HANDOFF: 368, RollupFact.COHORT: 366, RollupFact.OPEN_DEALS: -1} days",
        f"  baseline acceptance and response SLA by source (4 weeks): {120:.0f} ms",
        f"  baseline open pipeline by stage: {180:.0f} ms",
        f"baseline, plain SQL aggregates on raw tables: {base_ms:.0f} ms in all",
    ]
    for page, ms in raw_ms.items():
        lines.append(f"raw (no snapshot) {page}: {ms:.0f} ms ({ms / base_ms:.2f} × baseline)")
    lines += [
        f"first view of 60 page × filter keys: {leads / 3125:.1f} s in all",
        f"first views of /dashboards/content/ over 11 filter sets nobody opened: "
        f"p50 {leads / 4000:.0f} ms, max {leads / 2000:.0f} ms; 8 of 11 ≤ 300 ms; "
        f"max / target = {leads / 2000 / 300:.2f}",
        f"one refresh round of 107 hot snapshots (677 KPI reads shared between them): "
        f"{leads / 3413:.1f} s of worker time (they must fit in 30 s per worker to stay ≤ 60 s "
        f"old)",
        "workers needed to keep these 60 snapshots ≤ 60 s old: 1",
        f"dashboard pages from snapshots, 180 requests: p50 {20.0:.1f} ms, "
        f"p95 {45.5:.1f} ms; p95 / target 300 ms = 0.15; p95 / baseline = 0.152",
        f"pipeline review page: first view {leads / 100:.0f} ms, then p50 {30.0:.1f} ms, "
        f"p95 {50.0:.1f} ms; p95 / target 300 ms = 0.17; p95 / baseline = 0.167",
        "== lead_list_bench (load 1.10)",
        f"data: {leads:,} leads",
        f"/leads/ page 2,000, all leads: cold {47:.0f} ms, warm p50 {40.5:.1f} / "
        f"p95 {44.0:.1f} ms; cold / target 200 ms = 0.23; "
        f"baseline COUNT + OFFSET {60:.0f} ms (cold / baseline 0.783)",
        "== api_ingest_bench (load 1.30)",
        f"database: revops_bench_{leads}, {5_000:,} sampled leads",
        f"API: {60_000:,} events in 60 batches of {1_000:,} from 2 threads, gunicorn -w 2: "
        f"{60_000 / api_rate:.2f} s",
        f"  statuses [201]; created {60_000:,}; rows stored {60_000:,}",
        f"  request latency p50 {120:.0f} ms, p95 {210:.0f} ms",
        "  re-sent batch: HTTP 200, created 0, duplicates 1000",
        f"  => {api_rate:,.0f} events/s (MISSES the {10_000:,}/s target)",
        f"COPY: {60_000:,} rows in {2.5:.2f} s => {24_000:,.0f} rows/s",
        f"ratio API / COPY: {api_rate / 24_000:.2f}",
        f"validating one batch of {1_000:,}: lean {4.2:.1f} ms, "
        f"DRF serializer per event {0.3:.1f} ms (without lead lookups)",
        "== import_bench (load 3.00)",
        f"Database: revops_bench_{leads} — {leads:,} leads, {9_000:,} accounts; load average 3.00",
        f"  events round 1 (load 3.1): import 30.00 s ({event_rate:,.0f} rows/s), "
        f"COPY 10.00 s ({15_000:,.0f} rows/s)",
        "",
        f"{'':8} {'rows':>9} {'import rows/s':>14} {'COPY rows/s':>12} {'import/COPY':>12} "
        f"{'target':>8}  verdict",
        f"{'events':8} {200_000:>9,} {event_rate:>14,.0f} {15_000:>12,.0f} "
        f"{event_rate / 15_000:>12.2f} {50_000:>8,}  missed ({event_rate / 50_000:.2f} ×)",
        f"{'leads':8} {100_000:>9,} {lead_rate:>14,.0f} {8_000:>12,.0f} "
        f"{lead_rate / 8_000:>12.2f} {20_000:>8,}  missed ({lead_rate / 20_000:.2f} ×)",
        f"{'':8} COPY of every row the import writes (leads, history, score states): "
        f"{5_000:,} leads/s; the import runs at 0.80 × that",
        "Load average (1 min) at the end: 3.20",
        "== done (load 1.00 1.50 1.75)",
    ]
    return "\n".join(lines) + "\n"


PAGES_100K = {"/dashboards/": 2600, "/dashboards/funnel/": 130}
PAGES_1M = {"/dashboards/": 5000, "/dashboards/funnel/": 400}


@pytest.fixture
def logs(tmp_path):
    small = tmp_path / "run-all-100000.log"
    large = tmp_path / "run-all-1000000.log"
    small.write_text(
        run_all_log(
            100_000,
            seed=38.6,
            weights=5.0,
            icp=6.0,
            half_life=None,  # not printed: its row shows "—"
            raw_ms=PAGES_100K,
            api_rate=15_335,
            event_rate=6_490,
            lead_rate=5_653,
        )
    )
    large.write_text(
        run_all_log(
            1_000_000,
            seed=501.3,
            weights=40.0,
            icp=75.6,
            half_life=113.8,
            raw_ms=PAGES_1M,
            api_rate=9_926,
            event_rate=4_490,
            lead_rate=2_241,
        )
    )
    return small, large


def test_parse_reads_every_figure_with_thousands_separators(logs):
    log = growth.parse(logs[1].read_text(), str(logs[1]))
    values = {name: figure.value for name, figure in log.figures.items()}
    assert (log.leads, log.events) == (1_000_000, 10_000_000)
    assert values["seed_demo with scoring"] == 501.3
    assert values["scoring: baseline single UPDATE … GROUP BY"] == 160.0
    assert values["publish new event weights, end to end"] == 40.0
    # The first publish's line, not its "again" repeats; the ratio to the baseline past the
    # ratio to the target (a line that gained a field still reads).
    assert values["publish new event weights / baseline"] == 0.25
    assert values["publish a new ICP, end to end"] == 75.6
    assert values["publish a new ICP / baseline"] == 0.472
    assert values["publish an ICP that tests more, end to end"] == 151.2
    assert values["publish an ICP that tests more / baseline"] == 0.945
    assert values["dashboards: rollups refreshed first"] == 14.8
    assert values["first views of /dashboards/content/, filter sets nobody opened: p50"] == 250
    assert values["first views of /dashboards/content/, filter sets nobody opened: max"] == 500
    assert values["publish a new half-life, end to end"] == 113.8
    assert values["publish a new half-life / baseline"] == 0.71
    assert values["first view /dashboards/ (raw, no snapshot)"] == 5000
    assert values["first view /dashboards/funnel/ / baseline"] == 1.33
    assert values["dashboards' baseline, plain SQL aggregates in all"] == 300
    assert values["dashboards' baseline: open pipeline by stage"] == 180
    assert values["first views of all page × filter keys"] == 320.0
    assert values["snapshot refresh round, worker time"] == 293.0
    assert values["dashboard pages from snapshots, p95"] == 45.5
    assert values["pipeline review (/meeting/) first view"] == 10_000
    assert values["/leads/ page 2,000, all leads: cold"] == 47
    assert values["/leads/ page 2,000, all leads: baseline COUNT + OFFSET"] == 60
    assert values["API ingestion"] == 9_926
    assert log.figures["API ingestion"].text == "9,926"
    assert values["API ingestion / COPY"] == 0.41
    assert values["CSV import events"] == 4_490
    assert values["CSV import events: COPY"] == 15_000
    assert values["CSV import events / COPY"] == 0.30
    assert values["CSV import leads"] == 2_241
    assert values["CSV import leads / COPY"] == 0.28
    assert values["CSV import leads: COPY of every row it writes"] == 5_000
    assert values["sales queue, p95"] == 193.0
    assert values["breach sweep, steady state, ~1 % newly due: slowest run"] == 0.49
    assert values["load average (1 min) before seed_bench"] == 1.25
    assert values["load average (1 min) before scoring_bench"] == 1.40
    assert values["load average (1 min) before import_bench"] == 3.00
    assert values["load average (1 min) at the end"] == 1.00
    # The import's per-round line and the lead list's data line are not figures of the table.
    assert not any("events round" in name or name.startswith("data") for name in values)


def test_table_gives_growth_larger_over_smaller_and_a_dash_when_missing(logs, capsys):
    assert growth.main([str(logs[0]), str(logs[1])]) == 0
    out = capsys.readouterr().out
    rows = {
        cells[0]: cells[1:]
        for line in out.splitlines()
        if line.startswith("| ") and not line.startswith("| figure")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    assert out.startswith("Growth from 100,000 to 1,000,000 leads (10.0 × the leads)")
    assert (
        "| figure | 100,000 leads, 1,000,000 events | 1,000,000 leads, 10,000,000 events |"
    ) in out
    assert rows["seed_demo with scoring"] == ["38.6 s", "501.3 s", "13.0 ×"]
    assert rows["publish new event weights, end to end"] == ["5.00 s", "40.00 s", "8.00 ×"]
    assert rows["publish a new ICP, end to end"] == ["6.00 s", "75.60 s", "12.6 ×"]
    assert rows["publish a new half-life, end to end"] == ["—", "113.80 s", "—"]
    assert rows["first view /dashboards/ (raw, no snapshot)"] == ["2600 ms", "5000 ms", "1.92 ×"]
    assert rows["first view /dashboards/funnel/ (raw, no snapshot)"] == [
        "130 ms",
        "400 ms",
        "3.08 ×",
    ]
    assert rows["API ingestion"] == ["15,335 events/s", "9,926 events/s", "0.65 ×"]
    assert rows["CSV import events"] == ["6,490 rows/s", "4,490 rows/s", "0.69 ×"]
    assert rows["CSV import leads"] == ["5,653 rows/s", "2,241 rows/s", "0.40 ×"]
    assert rows["pipeline review (/meeting/) first view"] == ["1000 ms", "10000 ms", "10.0 ×"]
    # The machine's load is shown, not divided.
    assert rows["load average (1 min) before dashboard_bench"] == ["2.50", "2.50", ""]
    # In the benches' order: the seed first, the loads last.
    names = list(rows)
    assert names[0] == "seed_demo with scoring"
    assert names.index("publish new event weights, end to end") < names.index("API ingestion")
    assert names[-1] == "load average (1 min) at the end"


def test_logs_given_larger_first_are_put_in_order(logs, capsys):
    assert growth.main([str(logs[1]), str(logs[0])]) == 0
    assert "| seed_demo with scoring | 38.6 s | 501.3 s | 13.0 × |" in capsys.readouterr().out


def test_a_log_without_figures_exits_non_zero(logs, tmp_path):
    empty = tmp_path / "run-all-5000.log"
    empty.write_text("== load: 0.50 0.40 0.30 (1, 5, 15 min) on 2 cores\nTraceback (most recent…\n")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(empty), str(logs[1])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "no benchmark figures in" in result.stderr
    assert str(empty) in result.stderr
    assert result.stdout == ""


def test_a_missing_log_exits_non_zero(logs, tmp_path, capsys):
    assert growth.main([str(tmp_path / "nothing.log"), str(logs[1])]) != 0
    assert "cannot read" in capsys.readouterr().err
