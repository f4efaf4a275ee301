"""Raw-log ingestion: lines per second and peak memory, on generated months of different sizes.

    .venv/bin/python benchmarks/ingest_bench.py                       # 1,000,000 and 5,000,000 lines
    .venv/bin/python benchmarks/ingest_bench.py --lines 200000 1000000

Each size is generated once (seeded, in a temporary folder), then parsed and sessionised in a fresh
subprocess so that its peak RSS is its own. The sessions are streamed into a Parquet file as their
windows close (``SessionStream``), so the figure is ingestion's own memory: it should stay flat
while the file grows. (``sessionise``, which the flow calls, also holds the finished session table.)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_rss_kib() -> int:
    """This process's peak resident memory (VmHWM; ru_maxrss would carry the parent's over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(folder: str) -> dict:
    """Parse and sessionise one month folder into a Parquet file; runs inside the child process."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tollgate.config.spec import load_spec
    from tollgate.rawlogs.parse import log_files
    from tollgate.rawlogs.stream import SessionStream

    spec = load_spec(ROOT / "data" / "specs" / "security.yaml")
    baseline = peak_rss_kib()
    started = time.perf_counter()
    stream, writer, sessions = SessionStream(log_files(Path(folder)), spec, Path(folder).name), None, 0
    for chunk in stream:
        table = pa.Table.from_pandas(chunk, preserve_index=False)
        writer = writer or pq.ParquetWriter(Path(folder) / "sessions.parquet", table.schema)
        writer.write_table(table.cast(writer.schema))
        sessions += len(chunk)
    writer.close()
    report = stream.report
    seconds = time.perf_counter() - started
    peak = peak_rss_kib()
    size = sum(path.stat().st_size for path in log_files(Path(folder)))
    return {
        "lines": report.lines,
        "bytes": size,
        "seconds": round(seconds, 2),
        "lines_per_second": round(report.lines / seconds),
        "sessions": sessions,
        "parse_rate": round(report.parse_rate, 4),
        "peak_rss_mib": round(peak / 1024),
        "rss_before_mib": round(baseline / 1024),
        "worker_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "late_events": report.problems.get("late_event", 0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", nargs="+", type=int, default=[1_000_000, 5_000_000])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child)))
        return 0
    from tollgate.synth.raw_logs import write_month

    rows = []
    with tempfile.TemporaryDirectory(prefix="tollgate-ingest-bench-") as scratch:
        for lines in args.lines:
            folder = Path(scratch) / f"{lines}" / "2026-03"
            started = time.perf_counter()
            write_month("2026-03", lines, folder, seed=7, progress=False)
            print(f"generated {lines:,} events in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            child = subprocess.run(
                [sys.executable, __file__, "--child", str(folder)], capture_output=True, text=True, check=True
            )
            rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(
        "| lines | file size | seconds | lines/s | sessions | parse rate | late events "
        "| peak RSS (after imports) | worker peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['lines']:,} | {row['bytes'] / 2**20:,.0f} MiB | {row['seconds']} | {row['lines_per_second']:,} "
            f"| {row['sessions']:,} | {row['parse_rate']:.2%} | {row['late_events']:,} "
            f"| {row['peak_rss_mib']:,} MiB ({row['rss_before_mib']:,}) | {row['worker_peak_rss_mib']:,} MiB |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
