"""Raw event logs → sessions: streaming parse of JSON lines and syslog-style text, then per-session
aggregates as the spec's ``raw_logs`` section describes.

Files are cut into blocks of whole lines and read in time order across files; each block is parsed
(on a worker process), normalised (timestamps to UTC), de-duplicated and reduced to partial
per-session aggregates. Sessions whose window the stream has moved past are finished and handed out,
so memory follows the windows open at once, not the file. Every line that cannot be used is counted
by kind with a few samples kept: nothing is dropped silently.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter, defaultdict, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from tasks.spec import DatasetSpec, RawLogs

LOG_SUFFIXES = (".jsonl", ".json", ".log", ".txt")
CHUNK_LINES = 250_000
SAMPLES_PER_KIND = 5
CONTEXT_LINES = 10_000  # lines before a block checked for repeats across the block boundary
LINE_SAMPLE = 20_000  # lines (parsed or not) drawn uniformly from the whole input for the raw-log expectations
NEVER = 2**62  # a window number after every real one
SYSLOG_PAIR = re.compile(r'(\w+)=("[^"]*"|\S*)')
SYSLOG_HEAD = re.compile(r"^(\S+) \S+ [^:]+: ")
_SPAN_MIN, _SPAN_MAX, _ROWS = "_ts_min", "_ts_max", "_events"


class RawLogError(ValueError):
    """Raw logs that cannot be used at all (no files, no labels, nothing parsed)."""


@dataclass
class ParseReport:
    """What happened to every line read."""

    lines: int = 0
    parsed: int = 0
    duplicates: int = 0
    problems: Counter = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    first_event: str | None = None
    last_event: str | None = None
    files: list[str] = field(default_factory=list)

    def problem(self, kind: str, line: str) -> None:
        self.problems[kind] += 1
        if len(self.samples[kind]) < SAMPLES_PER_KIND:
            self.samples[kind].append(line[:300])

    @property
    def parse_rate(self) -> float:
        return self.parsed / self.lines if self.lines else 0.0

    def as_dict(self) -> dict:
        return {"lines": self.lines, "parsed": self.parsed, "parse_rate": round(self.parse_rate, 6),
                "duplicates_dropped": self.duplicates, "unusable_by_kind": dict(self.problems),
                "samples": {kind: list(lines) for kind, lines in self.samples.items()},
                "first_event_utc": self.first_event, "last_event_utc": self.last_event, "files": self.files}


class _LineParser:
    """Turns one line into a tuple of the spec's raw fields (text), or names why it cannot."""

    def __init__(self, raw: RawLogs):
        self.fields = raw.fields
        self.integers = set(raw.integer_fields)
        self.syslog_keys = raw.syslog_keys

    def parse(self, line: str) -> tuple | str:
        if line.startswith("{"):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                return "invalid_json"
            if not isinstance(record, dict):
                return "invalid_json"
        else:
            head = SYSLOG_HEAD.match(line)
            if head is None:
                return "unrecognised_line"
            record = {self.syslog_keys.get(key, key): value.strip('"')
                      for key, value in SYSLOG_PAIR.findall(line, head.end())}
            record[self.fields[0]] = head.group(1)
        values = []
        for name in self.fields:
            value = record.get(name)
            if value is None or value == "":
                return "missing_field"
            if name in self.integers:
                if type(value) is not int:
                    if not (isinstance(value, str) and value.isdigit()):
                        return "bad_number"
                    value = int(value)
            values.append(value)
        return tuple(values)


class _FastPath:
    """Per line format, a template learnt from the first good line: one regular expression whose
    groups capture the spec's fields, run over a whole block at once (polars, in Rust). Lines it does
    not match go to ``_LineParser``, which parses reordered or escaped records and names what is wrong
    with the rest."""

    def __init__(self, raw: RawLogs):
        self.raw = raw
        self.templates: dict[str, str] = {}  # format → pattern with a group named after each field

    def learn(self, line: str) -> None:
        if line.startswith("{") and "json" not in self.templates:
            self._learn_json(line)
        elif not line.startswith("{") and "syslog" not in self.templates:
            self._learn_syslog(line)

    def _group(self, name: str) -> str:
        return f"f{self.raw.fields.index(name)}"

    def _learn_json(self, line: str) -> None:
        fields, integers = set(self.raw.fields), set(self.raw.integer_fields)
        record = orjson.loads(line)
        quotes = 2 * len(record) + 2 * sum(isinstance(value, str) for value in record.values())
        if not fields <= set(record) or line.count('"') != quotes:
            return  # a key written twice, or quotes inside values: the per-line parser reads those
        parts = []
        for key, value in record.items():
            if isinstance(value, str):
                if key in integers:
                    return
                text = r'[^"\\]*'
                text = f"(?P<{self._group(key)}>{text})" if key in fields else text
                parts.append(f'"{re.escape(key)}"\\s*:\\s*"{text}"')
            elif isinstance(value, (int, float, bool)) or value is None:
                if key in fields and key not in integers:
                    return
                number = f"(?P<{self._group(key)}>[0-9]+)" if key in integers else r"(?:-?[0-9.eE+]+|true|false|null)"
                parts.append(f'"{re.escape(key)}"\\s*:\\s*{number}')
            else:
                return
        self.templates["json"] = r"^\{\s*" + r"\s*,\s*".join(parts) + r"\s*\}$"

    def _learn_syslog(self, line: str) -> None:
        head = re.match(r"^(\S+) (\S+) ([^ :]+): ", line)
        if head is None:
            return
        pairs = SYSLOG_PAIR.findall(line, head.end())
        names = [self.raw.syslog_keys.get(key, key) for key, _ in pairs]
        if not set(self.raw.fields) - {self.raw.time} <= set(names) or len(set(names)) != len(names):
            return
        parts = []
        for (key, value), name in zip(pairs, names):
            if name not in self.raw.fields:
                parts.append(f'{re.escape(key)}=' + ('"[^"]*"' if value.startswith('"') else r'[^\s"]*'))
            elif value.startswith('"'):
                parts.append(f'{re.escape(key)}="(?P<{self._group(name)}>[^"]*)"')
            else:
                value = "[0-9]+" if name in self.raw.integer_fields else r'[^\s"]+'
                parts.append(f"{re.escape(key)}=(?P<{self._group(name)}>{value})")
        self.templates["syslog"] = f"^(?P<{self._group(self.raw.time)}>\\S+) \\S+ [^ :]+: " + " ".join(parts) + "$"

    def learn_from(self, lines: pa.Array, parser: _LineParser, probe: int = 2000) -> None:
        """Learn the format of this block's first good line (a block is one file's lines; a second format
        mixed in is learnt from the lines the per-line parser reads)."""
        for line in lines.slice(0, probe).to_pylist():
            if line is None:
                continue
            if ("json" if line.startswith("{") else "syslog") in self.templates:
                return
            if type(parser.parse(line)) is tuple:
                self.learn(line)

    def extract(self, lines: pa.Array) -> tuple[np.ndarray, pl.DataFrame]:
        """(matched mask, the matched lines' fields in the spec's order and their ``_line``) for a block."""
        matched = np.zeros(len(lines), dtype=bool)
        frames = []
        text = pl.from_arrow(lines).alias("line")
        names = {f"f{i}": name for i, name in enumerate(self.raw.fields)}
        for pattern in self.templates.values():
            frame = (pl.DataFrame({"line": text, "_line": np.arange(len(lines))}).filter(pl.Series(~matched))
                     .select(pl.col("line").str.extract_groups(pattern), "_line").unnest("line").rename(names)
                     .drop_nulls(self.raw.time)
                     .with_columns(pl.col(name).cast(pl.Int64, strict=False) for name in self.raw.integer_fields))
            usable = pl.all_horizontal([pl.col(name) != "" for name in self.raw.text_fields]
                                       + [pl.col(name).is_not_null() for name in self.raw.integer_fields])
            frame = frame.filter(usable).select(*self.raw.fields, "_line")  # the per-line parser says why not
            matched[frame["_line"].to_numpy()] = True
            frames.append(frame)
        if not frames:
            return matched, pl.DataFrame(schema=self.raw_schema())
        return matched, pl.concat(frames)

    def raw_schema(self) -> dict:
        return {**{name: pl.Int64 if name in self.raw.integer_fields else pl.String for name in self.raw.fields},
                "_line": pl.Int64}


def _lookup(values: pl.Series, rule) -> pl.Series:
    """The lookup applied to each distinct value once (a block holds few distinct ports or agents)."""
    text = values.cast(pl.String)
    mapping = {}
    for value in text.unique().drop_nulls().to_list():
        label = rule.values.get(value)
        if label is None:
            label = next((label for needle, label in rule.contains.items() if needle in value), rule.default)
        mapping[value] = label
    return text.replace_strict(mapping, default=None, return_dtype=pl.String)


OFFSET = re.compile(r"^(?:\.\d{1,9})?(?:(Z)|([+-])(\d{2}):?(\d{2}))$")


def utc_seconds(values: pd.Series | pa.Array) -> np.ndarray:
    """ISO 8601 timestamps (``Z`` or a ``±HH:MM`` offset, optional fractions) → epoch seconds, NaN if unreadable."""
    text = values if isinstance(values, pa.Array) else pa.array(values.to_numpy(dtype=object), type=pa.string())
    local = pc.strptime(pc.utf8_slice_codeunits(text, 0, 19), format="%Y-%m-%dT%H:%M:%S", unit="s",
                        error_is_null=True)
    seconds = pc.cast(local, pa.int64()).to_numpy(zero_copy_only=False).astype(float)
    codes, suffixes = pd.factorize(pc.utf8_slice_codeunits(text, 19, 64).to_numpy(zero_copy_only=False))
    offsets = np.full(len(suffixes) + 1, np.nan)
    for i, suffix in enumerate(suffixes):
        match = OFFSET.match(suffix or "")
        if match:
            offsets[i] = 0.0 if match.group(1) else (1 if match.group(2) == "+" else -1) * (
                int(match.group(3)) * 3600 + int(match.group(4)) * 60)
    return seconds - offsets[np.where(codes < 0, -1, codes)]


def _hash(*columns: str) -> pl.Expr:
    """One 64-bit hash per row of these columns (fixed seeds: equal in every worker process)."""
    return pl.struct(*columns).hash(seed=0x746F6C6C)


class Sessioniser:
    """Partial per-session aggregates of the windows still open, merged block by block; ``finalise``
    turns the windows the stream has moved past into session rows and forgets them, so the state
    follows the open windows, not the file. Partials are keyed ``k`` (the spec's key) × ``w`` (window number)."""

    def __init__(self, raw: RawLogs, id_column: str):
        self.raw = raw
        self.id_column = id_column
        self.window = raw.window_minutes * 60
        self.additive: list[pl.DataFrame] = []
        self.distinct: dict[str, list[pl.DataFrame]] = defaultdict(list)
        self.modes: dict[str, list[pl.DataFrame]] = defaultdict(list)

    def add(self, events: pl.DataFrame) -> None:
        """Aggregate a block's events (the spec's fields, lookups, ``_ts`` and ``_window``)."""
        events = events.rename({self.raw.key: "k", "_window": "w"})
        field = {self.raw.key: "k"}.get
        sums = [pl.len().cast(pl.Int64).alias(_ROWS), pl.col("_ts").min().alias(_SPAN_MIN),
                pl.col("_ts").max().alias(_SPAN_MAX)]
        for name, rule in self.raw.sessions.items():
            where = [pl.col(field(column, column)) == value for column, value in rule.where.items()]
            if rule.how == "count":
                sums.append((pl.all_horizontal(where).sum() if where else pl.len()).cast(pl.Int64).alias(name))
            elif rule.how == "sum":
                value = pl.col(field(rule.field, rule.field))
                sums.append((value.filter(pl.all_horizontal(where)) if where else value).sum().cast(pl.Float64).alias(name))
            elif rule.how == "nunique":  # (session, value) pairs as one 64-bit hash each
                column = field(rule.field, rule.field)
                self.distinct[name].append(events.select("k", "w", p=_hash("k", "w", column)).unique("p"))
            elif rule.how == "mode":
                column = field(rule.field, rule.field)
                self.modes[name].append(events.group_by("k", "w", column).agg(n=pl.len().cast(pl.Int64))
                                        .rename({column: "v"}))
        self.additive.append(events.group_by("k", "w").agg(sums))

    def partials(self) -> tuple:
        self.compact()
        return self.additive, dict(self.distinct), dict(self.modes)

    def merge(self, partials: tuple) -> None:
        """Add another sessioniser's partial aggregates (e.g. from a worker process)."""
        additive, distinct, modes = partials
        self.additive.extend(additive)
        for name, parts in distinct.items():
            self.distinct[name].extend(parts)
        for name, parts in modes.items():
            self.modes[name].extend(parts)

    def compact(self) -> None:
        if len(self.additive) > 1:
            merged = pl.concat(self.additive)
            self.additive = [merged.group_by("k", "w").agg(
                pl.col(_SPAN_MIN).min(), pl.col(_SPAN_MAX).max(), pl.exclude("k", "w", _SPAN_MIN, _SPAN_MAX).sum()
            ).select(merged.columns)]
        for name, parts in self.distinct.items():
            if len(parts) > 1:
                self.distinct[name] = [pl.concat(parts).unique("p")]
        for name, parts in self.modes.items():
            if len(parts) > 1:
                self.modes[name] = [pl.concat(parts).group_by("k", "w", "v").agg(pl.col("n").sum())]

    def finalise(self, before: int | None = None) -> pd.DataFrame | None:
        """Session rows of the windows numbered below ``before`` (all with None), removed from the state."""
        self.compact()
        if not self.additive:
            return None
        done = pl.lit(True) if before is None else pl.col("w") < before
        final = self.additive[0].filter(done)
        if final.is_empty():
            return None
        self.additive = [self.additive[0].filter(~done)]
        distinct, modes = {}, {}
        for state, out in ((self.distinct, distinct), (self.modes, modes)):
            for name, (frame,) in state.items():
                out[name], state[name] = frame.filter(done), [frame.filter(~done)]
        return self._rows(final, distinct, modes)

    def _rows(self, table: pl.DataFrame, distinct: dict, modes: dict) -> pd.DataFrame:
        """One row per (key, window): the spec's id column, the key, window_start and every spec column."""
        columns = []
        for name, rule in self.raw.sessions.items():
            if rule.how in ("count", "sum"):
                columns.append(pl.col(name))
            elif rule.how == "span_seconds":
                columns.append((pl.col(_SPAN_MAX) - pl.col(_SPAN_MIN)).cast(pl.Float64).alias(name))
            elif rule.how == "first_hour":
                columns.append((pl.col(_SPAN_MIN) // 3600 % 24).cast(pl.Int64).alias(name))
            elif rule.how == "nunique":
                table = table.join(distinct[name].group_by("k", "w").agg(pl.len().cast(pl.Int64).alias(name)),
                                   on=["k", "w"], how="left")
                columns.append(pl.col(name).fill_null(0))
            else:  # mode: the most frequent value, ties to the first in sort order
                top = (modes[name].drop_nulls("v").sort(["n", "v"], descending=[True, False])
                       .group_by("k", "w", maintain_order=True).first().select("k", "w", pl.col("v").alias(name)))
                table = table.join(top, on=["k", "w"], how="left")
                columns.append(pl.col(name))
        start = pl.from_epoch(pl.col("w") * self.window, time_unit="s")
        out = table.select(
            (pl.col("k").cast(pl.String) + "@" + start.dt.strftime("%Y-%m-%dT%H:%MZ")).alias(self.id_column),
            pl.col("k").alias(self.raw.key), start.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00").alias("window_start"),
            *columns)
        return out.sort(self.id_column).to_pandas()


def _line_sample(outcomes: np.ndarray, events: pl.DataFrame, bad: np.ndarray, outside: np.ndarray, late: np.ndarray,
                 raw: RawLogs, rng: np.random.Generator) -> pd.DataFrame:
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


def _split_lines(block: bytes) -> pa.Array:
    """A block of whole lines as a pyarrow string array (invalid UTF-8 replaced, line ends dropped)."""
    text = block.decode("utf-8", errors="replace")
    lines = pc.split_pattern(pa.array([text]), "\n").flatten()
    if text.endswith("\n"):
        lines = lines.slice(0, len(lines) - 1)
    return pc.utf8_rtrim(lines, characters="\r")


class _LazyLines:
    """The text of an event's line, fetched only for the few lines a problem sample needs."""

    def __init__(self, lines: pa.Array, positions: np.ndarray):
        self.lines, self.positions = lines, positions

    def __getitem__(self, row: int) -> str:
        return self.lines[int(self.positions[row])].as_py()


def log_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in LOG_SUFFIXES)
    if not files:
        raise RawLogError(f"no log files ({', '.join(LOG_SUFFIXES)}) in {folder}")
    return files


def _month_range(month: str | None) -> tuple[float, float] | None:
    """The month in epoch seconds, widened by a day each side (a late or early line near the edge is
    still this month's traffic)."""
    if month is None:
        return None
    start = pd.Timestamp(datetime.strptime(month, "%Y-%m").replace(tzinfo=timezone.utc))
    slack = pd.Timedelta(days=1)
    return (start - slack).timestamp(), (start + pd.offsets.MonthBegin(1) + slack).timestamp()


def _parse(lines: pa.Array, parser: _LineParser, fast: _FastPath, report: ParseReport | None) -> pl.DataFrame:
    """The lines' events (spec fields, ``_line`` position, ``_ts`` epoch seconds or NaN); problems to ``report``."""
    fast.learn_from(lines, parser)
    matched, events = fast.extract(lines)
    slow_rows, slow_at = [], []
    for at in np.flatnonzero(~matched):
        line = lines[int(at)].as_py()
        outcome = parser.parse(line)
        if type(outcome) is str:
            if report is not None:
                report.problem(outcome, line)
            continue
        fast.learn(line)
        slow_rows.append(outcome)
        slow_at.append(int(at))
    if slow_rows:
        slow = pl.DataFrame([(*row, at) for row, at in zip(slow_rows, slow_at)], schema=fast.raw_schema(), orient="row")
        events = pl.concat([events, slow])
    stamps = utc_seconds(events[parser.fields[0]].to_arrow()) if len(events) else np.zeros(0)
    return events.with_columns(_ts=pl.Series(stamps, dtype=pl.Float64))


def _event_hashes(events: pl.DataFrame, raw: RawLogs) -> pl.Series:
    """One 64-bit hash per event (its fields with the time normalised): equal events, equal hashes."""
    return events.select(_hash(*raw.fields[1:], "_ts")).to_series()


def _process_block(spec: DatasetSpec, span: _Span, bounds, seed: int, closed_before: int) -> dict:
    """One block of whole lines → partial session aggregates, its share of the parse report and of the
    line sample. The lines just before the block (its context) let repeats across the boundary be seen;
    events of windows numbered below ``closed_before`` come too late (those sessions are already final)."""
    raw = spec.raw_logs
    block, context = span.read()
    parser, fast = _LineParser(raw), _FastPath(raw)
    report, sessioniser = ParseReport(), Sessioniser(raw, spec.id_column)
    rng = np.random.default_rng(seed)
    lines = _split_lines(block)
    report.lines = len(lines)
    events = _parse(lines, parser, fast, report)
    positions = events["_line"].to_numpy()
    outcomes = np.full(len(lines), -1)
    outcomes[positions] = np.arange(len(events))
    result = {"report": report, "partials": None, "sample": None, "first": None, "last": None}
    kept_lines = _LazyLines(lines, positions)
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
    hashes = _event_hashes(events, raw)
    repeat = ~hashes.is_first_distinct()
    if context:
        before = _parse(_split_lines(context), parser, fast, None)
        before = before.filter(pl.col("_ts").is_not_nan()).with_columns(pl.col("_ts").cast(pl.Int64))
        repeat = repeat | hashes.is_in(_event_hashes(before, raw).implode())
    report.duplicates = int(repeat.sum())
    events = events.filter(~repeat).with_columns(_window=pl.col("_ts") // sessioniser.window)
    late = (events["_window"] < closed_before).to_numpy()
    kept_at = events["_line"].to_numpy()
    late_events = np.zeros(len(parsed_events), dtype=bool)  # per parsed event, found by its line
    late_events[outcomes[kept_at[late]]] = True
    result["sample"] = _line_sample(outcomes, parsed_events, bad, outside, late_events, raw, rng)
    if late.any():
        late_lines = _LazyLines(lines, kept_at)
        for i in np.flatnonzero(late):
            report.problem("late_event", late_lines[i])
        events = events.filter(pl.Series(~late))
    report.parsed = len(events)
    if events.is_empty():
        return result
    events = events.with_columns(_lookup(events[rule.source], rule).alias(name) for name, rule in raw.lookups.items())
    sessioniser.add(events)
    result.update(partials=sessioniser.partials(), first=int(events["_ts"].min()), last=int(events["_ts"].max()))
    return result


def _start_time(head: bytes, parser: _LineParser, probe: int = 64) -> float:
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

    def __init__(self, path: Path, block_bytes: int, parser: _LineParser):
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


def _blocks(files: list[Path], chunk_lines: int, parser: _LineParser):
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

    def __init__(self, files: list[Path], spec: DatasetSpec, month: str | None = None,
                 chunk_lines: int = CHUNK_LINES, progress=None, workers: int | None = None):
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
        for span, watermark in _blocks(self.files, self.chunk_lines, _LineParser(self.spec.raw_logs)):
            after = max(closed, self._closed(watermark))
            yield span, closed, after
            closed = after

    def __iter__(self):
        sessioniser = Sessioniser(self.spec.raw_logs, self.spec.id_column)
        bounds = _month_range(self.month)
        small = sum(path.stat().st_size for path in self.files) < 2 * self.chunk_lines * 160
        if self.workers == 1 or small:
            for number, (span, closed, after) in enumerate(self._jobs()):
                yield from self._absorb(_process_block(self.spec, span, bounds, number, closed),
                                        sessioniser, after)
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
        report.first_event = datetime.fromtimestamp(self._first, timezone.utc).isoformat()
        report.last_event = datetime.fromtimestamp(self._last, timezone.utc).isoformat()
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
            report.samples[kind].extend(part.samples[kind][:max(room, 0)])
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


def sessionise(files: list[Path], spec: DatasetSpec, month: str | None = None, chunk_lines: int = CHUNK_LINES,
               progress=None, workers: int | None = None) -> tuple[pd.DataFrame, ParseReport, pd.DataFrame]:
    """All sessions of ``files`` (see ``SessionStream``) in one table, sorted by the spec's id column.
    Returns (sessions, report, a uniform sample of lines for the raw-log expectations)."""
    stream = SessionStream(files, spec, month, chunk_lines, progress, workers)
    sessions = pd.concat(list(stream), ignore_index=True).sort_values(spec.id_column, ignore_index=True)
    return sessions, stream.report, stream.sample


def attach_labels(sessions: pd.DataFrame, labels: Path, spec: DatasetSpec) -> pd.DataFrame:
    """The target from the SOC's incident records: a session listed there is positive."""
    if not labels.is_file():
        raise RawLogError(f"no labels file {labels}: every month of raw logs needs its incident records")
    truth = pd.read_csv(labels, dtype=str)
    key = spec.id_column
    if key not in truth:
        raise RawLogError(f"{labels} has no {key} column")
    listed = sessions[key].isin(truth[key])
    target = spec.target
    sessions[target.column] = np.where(listed, target.positive, target.negative)
    kind = spec.raw_logs.label_kind_column
    if kind and kind in truth:
        sessions[kind] = sessions[key].map(truth.set_index(key)[kind]).fillna(spec.raw_logs.negative_kind)
    return sessions
