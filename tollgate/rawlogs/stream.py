"""Raw event logs → sessions, streamed: files are cut into blocks of whole lines and read in time order across
files; each block is parsed (on a worker process), de-duplicated and reduced to partial per-session aggregates.
Sessions whose window the stream has moved past are finished and handed out, so memory follows the windows
open at once, not the file. Every line that cannot be used is counted by kind with a few samples kept:
nothing is dropped silently.
"""

from __future__ import annotations

import math
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from tollgate.config.spec import DatasetSpec, RawLogs
from tollgate.rawlogs.parse import (
    SAMPLES_PER_KIND,
    FastPath,
    LazyLines,
    LineParser,
    ParseReport,
    RawLogError,
    parse_lines,
    split_lines,
    utc_seconds,
)
from tollgate.rawlogs.sessions import Sessioniser, event_hashes, lookup

CHUNK_LINES = 250_000
CONTEXT_LINES = 10_000  # lines before a block checked for repeats across the block boundary
LINE_SAMPLE = 20_000  # lines (parsed or not) drawn uniformly from the whole input for the raw-log expectations
NEVER = 2**62  # a window number after every real one


def _line_sample(
    outcomes: np.ndarray,
    events: pl.DataFrame,
    bad: np.ndarray,
    outside: np.ndarray,
    late: np.ndarray,
    raw: RawLogs,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The block's lines with the ``LINE_SAMPLE`` smallest random keys (``_key``): parsed or not, timestamp
    readable, inside the month, on time (not a ``late_event``), fields. Keeping the smallest keys across blocks
    is a uniform sample of the input."""
    keys = rng.random(len(outcomes))
    picked = np.argpartition(keys, LINE_SAMPLE)[:LINE_SAMPLE] if len(keys) > LINE_SAMPLE else np.arange(len(keys))
    rows = outcomes[picked]
    parsed = rows >= 0
    frame = pd.DataFrame({"parsed": parsed.astype(int), "_key": keys[picked]})
    if not parsed.any():
        return frame
    at = np.maximum(rows, 0)
    frame["timestamp_ok"] = np.where(parsed, (~bad[at]).astype(float), np.nan)
    frame["in_month"] = np.where(parsed & ~bad[at], (~outside[at]).astype(float), np.nan)
    frame["on_time"] = np.where(parsed & ~bad[at] & ~outside[at], (~late[at]).astype(float), np.nan)
    for column in raw.fields[1:]:
        frame[column] = np.where(parsed, events[column].gather(at).to_numpy(), None)
    return frame


def _month_range(month: str | None) -> tuple[float, float] | None:
    """The month in epoch seconds, widened by a day each side (a late or early line near the edge is
    still this month's traffic)."""
    if month is None:
        return None
    start = pd.Timestamp(datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC))
    slack = pd.Timedelta(days=1)
    return (start - slack).timestamp(), (start + pd.offsets.MonthBegin(1) + slack).timestamp()


def _process_block(spec: DatasetSpec, span: _Span, bounds, seed: int, closed_before: int) -> dict:
    """One block of whole lines → partial session aggregates, its share of the parse report and of the
    line sample. The lines just before the block (its context) let repeats across the boundary be seen;
    events of windows numbered below ``closed_before`` come too late (those sessions are already final)."""
    raw = spec.raw_logs
    block, context = span.read()
    parser, fast = LineParser(raw), FastPath(raw)
    report, sessioniser = ParseReport(), Sessioniser(raw, spec.id_column)
    rng = np.random.default_rng(seed)
    lines = split_lines(block)
    report.lines = len(lines)
    events = parse_lines(lines, parser, fast, report)
    positions = events["_line"].to_numpy()
    outcomes = np.full(len(lines), -1)
    outcomes[positions] = np.arange(len(events))
    result = {"report": report, "partials": None, "sample": None, "first": None, "last": None}
    kept_lines = LazyLines(lines, positions)
    stamps = events["_ts"].to_numpy()
    bad = np.isnan(stamps)
    outside = np.zeros(len(events), dtype=bool)
    if bounds is not None:
        outside = ~bad & ((stamps < bounds[0]) | (stamps >= bounds[1]))
        for i in np.flatnonzero(outside):
            report.problem("timestamp_outside_month", kept_lines[i])
    for i in np.flatnonzero(bad):
        report.problem("bad_timestamp", kept_lines[i])
    parsed_events = events
    events = events.filter(pl.Series(~(bad | outside))).with_columns(pl.col("_ts").cast(pl.Int64))
    # Exact repeats (the same event delivered twice) within the block or just before it.
    hashes = event_hashes(events, raw)
    repeat = ~hashes.is_first_distinct()
    if context:
        before = parse_lines(split_lines(context), parser, fast, None)
        before = before.filter(pl.col("_ts").is_not_nan()).with_columns(pl.col("_ts").cast(pl.Int64))
        repeat = repeat | hashes.is_in(event_hashes(before, raw).implode())
    report.duplicates = int(repeat.sum())
    events = events.filter(~repeat).with_columns(_window=pl.col("_ts") // sessioniser.window)
    late = (events["_window"] < closed_before).to_numpy()
    kept_at = events["_line"].to_numpy()
    late_events = np.zeros(len(parsed_events), dtype=bool)  # per parsed event, found by its line
    late_events[outcomes[kept_at[late]]] = True
    result["sample"] = _line_sample(outcomes, parsed_events, bad, outside, late_events, raw, rng)
    if late.any():
        late_lines = LazyLines(lines, kept_at)
        for i in np.flatnonzero(late):
            report.problem("late_event", late_lines[i])
        events = events.filter(pl.Series(~late))
    report.parsed = len(events)
    if events.is_empty():
        return result
    events = events.with_columns(lookup(events[rule.source], rule).alias(name) for name, rule in raw.lookups.items())
    sessioniser.add(events)
    result.update(partials=sessioniser.partials(), first=int(events["_ts"].min()), last=int(events["_ts"].max()))
    return result


def _start_time(head: bytes, parser: LineParser, probe: int = 64) -> float:
    """The earliest UTC time among the first readable events of a block (−inf if none: it is then read
    first). Too early only delays finalising; too late would make events late, so the minimum."""
    stamps = []
    for line in head.decode("utf-8", errors="replace").splitlines()[:probe]:
        outcome = parser.parse(line)
        if type(outcome) is tuple:
            stamps.append(outcome[0])
    seconds = utc_seconds(pd.Series(stamps, dtype=object))
    seconds = seconds[~np.isnan(seconds)]
    return float(seconds.min()) if len(seconds) else -math.inf


@dataclass(frozen=True)
class _Span:
    """Where a block of whole lines sits in its file: the worker reads it (and the lines before it) itself."""

    path: str
    start: int
    end: int

    def read(self, context_lines: int = CONTEXT_LINES) -> tuple[bytes, bytes]:
        """(the block, up to ``context_lines`` whole lines just before it in the file)."""
        with open(self.path, "rb") as handle:
            begin = max(0, self.start - context_lines * 400)
            handle.seek(begin)
            before = handle.read(self.start - begin)
            block = handle.read(self.end - self.start)
        lines = before.splitlines(keepends=True)
        if begin > 0 and lines:
            lines = lines[1:]  # the first piece may be the end of a longer line
        return block, b"".join(lines[-context_lines:])


class _FileBlocks:
    """One log file cut into blocks of whole lines, one block ahead so that block's start time is known."""

    def __init__(self, path: Path, block_bytes: int, parser: LineParser):
        self.path, self.size = str(path), path.stat().st_size
        self.block_bytes, self.parser = block_bytes, parser
        self.offset = 0
        self.ahead: _Span | None = None
        self.start = math.inf
        self._cut()

    def _cut(self) -> None:
        if self.offset >= self.size:
            self.ahead, self.start = None, math.inf
            return
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            head = handle.read(64 * 2048)
            handle.seek(self.offset + self.block_bytes)
            handle.readline()  # the block ends with a whole line
            end = min(handle.tell(), self.size)
        self.ahead, self.start = _Span(self.path, self.offset, end), _start_time(head, self.parser)

    def take(self) -> _Span:
        span = self.ahead
        self.offset = span.end
        self._cut()
        return span


def _blocks(files: list[Path], chunk_lines: int, parser: LineParser):
    """Blocks of whole lines from all files, a k-way merge by time: the file whose next block starts
    earliest goes first. Yields (block's span, the watermark: the earliest start of any block not yet
    yielded, ``inf`` after the last)."""
    readers = [_FileBlocks(path, chunk_lines * 160, parser) for path in files]
    while live := [reader for reader in readers if reader.ahead is not None]:
        span = min(live, key=lambda reader: reader.start).take()
        yield span, min(reader.start for reader in readers)


class SessionStream:
    """Sessions of raw log files, yielded in chunks as their windows close.

    Blocks are read across the files in time order and parsed on ``workers`` processes (default: one
    per core); after each block the windows ending more than ``raw_logs.lateness_minutes`` before the
    watermark are final, so the state held follows the open windows, never the file. An event for a
    window already final is counted as ``late_event`` (with samples), not silently merged or lost.
    ``report`` and ``sample`` (a uniform sample of lines for the raw-log expectations) are complete once
    the stream is exhausted."""

    def __init__(
        self,
        files: list[Path],
        spec: DatasetSpec,
        month: str | None = None,
        chunk_lines: int = CHUNK_LINES,
        progress=None,
        workers: int | None = None,
    ):
        if spec.raw_logs is None:
            raise RawLogError(f"spec '{spec.name}' has no raw_logs section: it cannot read raw logs")
        if not spec.id_column:
            raise RawLogError(f"spec '{spec.name}' needs an id_column to name its sessions")
        self.files, self.spec, self.month, self.chunk_lines = files, spec, month, chunk_lines
        self.progress, self.workers = progress, workers or os.cpu_count() or 1
        self.report = ParseReport(files=[str(p) for p in files])
        self.sample = pd.DataFrame()
        self._samples: list[pd.DataFrame] = []
        self._first, self._last = math.inf, -math.inf  # earliest and latest event kept (epoch seconds)

    def _closed(self, watermark: float) -> int:
        """Windows numbered below this end before ``watermark`` minus the allowed lateness."""
        if watermark == math.inf:
            return NEVER
        if watermark == -math.inf:  # a block whose first lines have no readable time: nothing closes yet
            return -NEVER
        raw = self.spec.raw_logs
        return int((watermark - raw.lateness_minutes * 60) // (raw.window_minutes * 60))

    def _jobs(self):
        """(block's span, windows closed when it is processed, windows closed after it)."""
        closed = -NEVER
        for span, watermark in _blocks(self.files, self.chunk_lines, LineParser(self.spec.raw_logs)):
            after = max(closed, self._closed(watermark))
            yield span, closed, after
            closed = after

    def __iter__(self):
        sessioniser = Sessioniser(self.spec.raw_logs, self.spec.id_column)
        bounds = _month_range(self.month)
        small = sum(path.stat().st_size for path in self.files) < 2 * self.chunk_lines * 160
        if self.workers == 1 or small:
            for number, (span, closed, after) in enumerate(self._jobs()):
                yield from self._absorb(_process_block(self.spec, span, bounds, number, closed), sessioniser, after)
        else:
            with ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn")) as pool:
                pending = deque()
                for number, (span, closed, after) in enumerate(self._jobs()):
                    pending.append((pool.submit(_process_block, self.spec, span, bounds, number, closed), after))
                    if len(pending) >= 2 * self.workers:  # bounded: results in memory follow the workers
                        future, after = pending.popleft()
                        yield from self._absorb(future.result(), sessioniser, after)
                while pending:
                    future, after = pending.popleft()
                    yield from self._absorb(future.result(), sessioniser, after)
        rest = sessioniser.finalise()
        if rest is not None:
            yield rest
        report = self.report
        if report.parsed == 0:
            raise RawLogError(f"no usable event in {len(self.files)} file(s): {dict(report.problems)}")
        report.first_event = datetime.fromtimestamp(self._first, UTC).isoformat()
        report.last_event = datetime.fromtimestamp(self._last, UTC).isoformat()
        self.sample = self._samples[0].drop(columns="_key").reset_index(drop=True)

    def _absorb(self, result: dict, sessioniser: Sessioniser, closed: int):
        """Count a block's report, keep its share of the sample, merge its partials; yield what is final."""
        part, report = result["report"], self.report
        report.lines += part.lines
        report.parsed += part.parsed
        report.duplicates += part.duplicates
        for kind, count in part.problems.items():
            report.problems[kind] += count
            room = SAMPLES_PER_KIND - len(report.samples[kind])
            report.samples[kind].extend(part.samples[kind][: max(room, 0)])
        sample = result["sample"]
        if self._samples and len(self._samples[0]) >= LINE_SAMPLE:  # only keys below the kept ones can enter
            sample = sample[sample["_key"].to_numpy() < self._samples[0]["_key"].max()]
        self._samples.append(sample)
        if len(self._samples) > 1:
            self._samples = [pd.concat(self._samples, ignore_index=True).nsmallest(LINE_SAMPLE, "_key")]
        if result["partials"] is not None:
            sessioniser.merge(result["partials"])
            self._first, self._last = min(self._first, result["first"]), max(self._last, result["last"])
        if self.progress is not None:
            self.progress(report)
        final = sessioniser.finalise(closed)
        if final is not None:
            yield final


def sessionise(
    files: list[Path],
    spec: DatasetSpec,
    month: str | None = None,
    chunk_lines: int = CHUNK_LINES,
    progress=None,
    workers: int | None = None,
) -> tuple[pd.DataFrame, ParseReport, pd.DataFrame]:
    """All sessions of ``files`` (see ``SessionStream``) in one table, sorted by the spec's id column.
    Returns (sessions, report, a uniform sample of lines for the raw-log expectations)."""
    stream = SessionStream(files, spec, month, chunk_lines, progress, workers)
    sessions = pd.concat(list(stream), ignore_index=True).sort_values(spec.id_column, ignore_index=True)
    return sessions, stream.report, stream.sample
