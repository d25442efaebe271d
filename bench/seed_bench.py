"""Seeder benchmark (foundation issue). Not a test.

    # 5,000 leads on a fresh SQLite file
    .venv/bin/python bench/seed_bench.py
    # the benchmark data set
    .venv/bin/python bench/seed_bench.py --leads 1000000 --events-per-lead 10 \
        --database-url postgres://postgres@127.0.0.1:5432/revops_bench

Prints the wall time of `seed_demo` and its ratio to the target: 30 s for 5,000 leads on
SQLite; 8 minutes for 1,000,000 leads with 10 events each on PostgreSQL (issue 15: load,
scoring and the rollups' build), and the machine's load average before and after.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SQLITE_5K_SECONDS = 30.0
TARGET_POSTGRESQL_1M_SECONDS = 8 * 60.0


def run(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default="")
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--events-per-lead", type=float, default=8)
    args = parser.parse_args()
    print(f"load before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/bench.sqlite3"
        env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "revops.settings.local"}
        run(["migrate", "-v0"], env)
        seconds = run(
            [
                "seed_demo",
                "--reset",
                f"--leads={args.leads}",
                f"--events-per-lead={args.events_per_lead}",
            ],
            env,
        )
    backend = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"seed_demo {args.leads:,} leads on {backend} (load + scoring): {seconds:.1f} s")
    print(f"load after: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    if backend == "SQLite" and args.leads == 5000:
        print(
            f"target ≤ {TARGET_SQLITE_5K_SECONDS:.0f} s: "
            f"{seconds / TARGET_SQLITE_5K_SECONDS:.2f} × the target"
        )
    if backend == "PostgreSQL" and args.leads == 1_000_000:
        print(
            f"target ≤ {TARGET_POSTGRESQL_1M_SECONDS:.0f} s: "
            f"{seconds / TARGET_POSTGRESQL_1M_SECONDS:.2f} × the target"
        )


if __name__ == "__main__":
    main()
