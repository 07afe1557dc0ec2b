"""`make bench`: run every benchmark section on this machine and write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import platform
import sys
from pathlib import Path

SECTIONS = [
    "benchmarks.pipeline",
    "benchmarks.verdict",
    "benchmarks.service",
    "benchmarks.protocols",
    "benchmarks.monitoring",
    "benchmarks.batch",
]


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    system = f"{platform.system()} {platform.machine()}"
    return f"{system}, {os.cpu_count()} cores ({cpu}){memory}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", choices=[s.rsplit(".", 1)[1] for s in SECTIONS], action="append")
    parser.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)
    chosen = [s for s in SECTIONS if not args.only or s.rsplit(".", 1)[1] in args.only]
    parts = [
        "# Benchmarks",
        "",
        f"- Machine: {machine()}",
        f"- Command: `make bench` (`python -m benchmarks{''.join(f' --only {o}' for o in args.only or [])}`)",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        "Every ratio compares against a baseline measured in the same run on the same machine.",
        "",
    ]
    for name in chosen:
        print(f"bench: running {name}", file=sys.stderr)
        parts.append(importlib.import_module(name).run().rstrip() + "\n")
    args.output.write_text("\n".join(parts), encoding="utf-8")
    print(args.output.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
