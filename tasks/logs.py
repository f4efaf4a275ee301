"""Raw event logs → sessions: streaming parse of JSON lines and syslog-style text, then per-session
aggregates as the spec's ``raw_logs`` section describes.

Lines are read in chunks; each chunk is parsed, normalised (timestamps to UTC), de-duplicated and
reduced to partial per-session aggregates, so memory follows the number of sessions, not the number
of lines. Every line that cannot be used is counted by kind with a few samples kept: nothing is
dropped silently.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tasks.spec import Aggregation, DatasetSpec, RawLogs

LOG_SUFFIXES = (".jsonl", ".json", ".log", ".txt")
CHUNK_LINES = 250_000
SAMPLES_PER_KIND = 5
SAMPLE_PER_CHUNK = 5_000  # lines (parsed or not) per chunk kept for the raw-log expectations
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
    """One RE2 pattern per line format, learnt from the first good line of that format, applied to a
    whole chunk at once (pyarrow). Lines it does not match go to ``_LineParser``, which parses
    reordered or escaped records and names what is wrong with the rest."""

    def __init__(self, raw: RawLogs):
        self.raw = raw
        self.patterns: dict[str, str] = {}

    def learn(self, line: str) -> None:
        fields, integers = self.raw.fields, set(self.raw.integer_fields)
        if line.startswith("{") and "json" not in self.patterns:
            record = orjson.loads(line)
            parts = []
            for key, value in record.items():
                if key in fields:
                    body = r"(\d+)" if key in integers else r'"([^"\\]*)"'
                    parts.append(f'"{re.escape(key)}":\\s*' + body.replace("(", f"(?P<{key}>", 1))
                else:
                    parts.append(f'"{re.escape(key)}":\\s*(?:"[^"\\\\]*"|[-0-9.eE]+|true|false|null)')
            if set(fields) <= set(record):
                self.patterns["json"] = r"^\{" + r",\s*".join(parts) + r"\}$"
        elif not line.startswith("{") and "syslog" not in self.patterns:
            head = SYSLOG_HEAD.match(line)
            pairs = SYSLOG_PAIR.findall(line, head.end())
            names = {key: self.raw.syslog_keys.get(key, key) for key, _ in pairs}
            if set(fields) - {self.raw.time} <= set(names.values()):
                parts = []
                for key, value in pairs:
                    name = names[key]
                    body = r"(\d+)" if name in integers else (r'"([^"\\]*)"' if value.startswith('"') else r'([^\s"]+)')
                    if name in fields:
                        body = body.replace("(", f"(?P<{name}>", 1)
                    else:
                        body = body.replace("(", "(?:", 1)
                    parts.append(f"{re.escape(key)}=" + body)
                self.patterns["syslog"] = (rf"^(?P<{self.raw.time}>\S+) \S+ [^:]+: " + " ".join(parts) + "$")

    def learn_from(self, lines: pa.Array, parser: _LineParser, probe: int = 2000) -> None:
        """Learn the formats this chunk's first good lines use (each file is one format)."""
        for line in lines.slice(0, probe).to_pylist():
            if len(self.patterns) == 2:
                return
            if line is not None and type(parser.parse(line)) is tuple:
                self.learn(line)

    def extract(self, lines: pa.Array) -> tuple[np.ndarray, pd.DataFrame]:
        """(matched mask, the matched lines' fields in the spec's order) for a chunk of lines."""
        matched = np.zeros(len(lines), dtype=bool)
        frames = []
        for pattern in self.patterns.values():
            found = pc.extract_regex(lines, pattern)
            hit = found.is_valid().to_numpy(zero_copy_only=False) & ~matched
            if not hit.any():
                continue
            rows = found.filter(pa.array(hit))
            frame = pd.DataFrame({name: rows.field(name).to_numpy(zero_copy_only=False) for name in self.raw.fields})
            empty = np.zeros(len(frame), dtype=bool)
            for name in self.raw.text_fields:
                empty |= (frame[name] == "").to_numpy()
            keep = np.flatnonzero(hit)[~empty]
            matched[keep] = True
            frame = frame.loc[~empty]
            frame["_line"] = keep
            frames.append(frame)
        if not frames:
            return matched, pd.DataFrame(columns=[*self.raw.fields, "_line"])
        frame = pd.concat(frames, ignore_index=True)
        for name in self.raw.integer_fields:
            frame[name] = frame[name].astype(np.int64)
        return matched, frame


def _lookup(values: pd.Series, rule) -> pd.Series:
    """The lookup applied to each distinct value once (a chunk holds few distinct ports or agents)."""
    codes, uniques = pd.factorize(values)
    text = pd.Series(uniques).astype(str)
    result = text.map(rule.values) if rule.values else pd.Series(np.nan, index=text.index, dtype=object)
    for needle, label in rule.contains.items():
        result = result.where(result.notna() | ~text.str.contains(needle, regex=False), label)
    if rule.default is not None:
        result = result.fillna(rule.default)
    mapped = result.to_numpy(dtype=object)[np.maximum(codes, 0)]
    mapped[codes < 0] = None
    return pd.Series(mapped, index=values.index)


OFFSET = re.compile(r"^(?:\.\d{1,9})?(?:(Z)|([+-])(\d{2}):?(\d{2}))$")


def utc_seconds(values: pd.Series) -> np.ndarray:
    """ISO 8601 timestamps (``Z`` or a ``±HH:MM`` offset, optional fractions) → epoch seconds, NaN if unreadable."""
    text = pa.array(values.to_numpy(dtype=object), type=pa.string())
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


class Sessioniser:
    """Partial per-session aggregates, merged chunk by chunk."""

    def __init__(self, raw: RawLogs, id_column: str):
        self.raw = raw
        self.id_column = id_column
        self.window = raw.window_minutes * 60
        self.additive: list[pd.DataFrame] = []
        self.distinct: dict[str, list[pd.DataFrame]] = defaultdict(list)
        self.modes: dict[str, list[pd.DataFrame]] = defaultdict(list)

    def add(self, events: pd.DataFrame) -> None:
        keys = [events[self.raw.key], events["_window"]]
        sums = {_ROWS: np.ones(len(events), dtype=np.int64)}
        for name, rule in self.raw.sessions.items():
            if rule.how in ("count", "sum"):
                mask = self._where(events, rule)
                value = np.ones(len(events)) if rule.how == "count" else events[rule.field].to_numpy(dtype=float)
                sums[name] = np.where(mask, value, 0.0)
            elif rule.how in ("nunique", "mode"):
                frame = pd.DataFrame({"k": events[self.raw.key], "w": events["_window"], "v": events[rule.field]})
                if rule.how == "nunique":
                    self.distinct[name].append(frame.drop_duplicates())
                else:
                    self.modes[name].append(frame.groupby(["k", "w", "v"], sort=False).size().rename("n").reset_index())
        table = pd.DataFrame(sums).groupby(keys, sort=False).sum()
        span = events["_ts"].groupby(keys, sort=False).agg(["min", "max"])
        table[_SPAN_MIN], table[_SPAN_MAX] = span["min"], span["max"]
        self.additive.append(table)
        if len(self.additive) >= 8:
            self.compact()

    @staticmethod
    def _where(events: pd.DataFrame, rule: Aggregation) -> np.ndarray:
        mask = np.ones(len(events), dtype=bool)
        for column, value in rule.where.items():
            mask &= (events[column] == value).to_numpy()
        return mask

    def compact(self) -> None:
        if self.additive:
            merged = pd.concat(self.additive)
            spans = merged.groupby(level=[0, 1], sort=False).agg({_SPAN_MIN: "min", _SPAN_MAX: "max"})
            table = merged.drop(columns=[_SPAN_MIN, _SPAN_MAX]).groupby(level=[0, 1], sort=False).sum()
            self.additive = [table.join(spans)]
        for name, parts in self.distinct.items():
            self.distinct[name] = [pd.concat(parts).drop_duplicates()]
        for name, parts in self.modes.items():
            self.modes[name] = [pd.concat(parts).groupby(["k", "w", "v"], sort=False)["n"].sum().reset_index()]

    def sessions(self) -> pd.DataFrame:
        """One row per (key, window): the spec's id column, the key, window_start and every spec column."""
        self.compact()
        if not self.additive:
            return pd.DataFrame()
        table = self.additive[0]
        table.index.names = ["k", "w"]
        out = pd.DataFrame(index=table.index)
        for name, rule in self.raw.sessions.items():
            if rule.how in ("count", "sum"):
                out[name] = table[name].round().astype(np.int64) if rule.how == "count" else table[name]
            elif rule.how == "span_seconds":
                out[name] = (table[_SPAN_MAX] - table[_SPAN_MIN]).astype(float)
            elif rule.how == "first_hour":
                out[name] = (table[_SPAN_MIN] // 3600 % 24).astype(np.int64)
            elif rule.how == "nunique":
                out[name] = self.distinct[name][0].groupby(["k", "w"]).size().reindex(table.index).fillna(0).astype(np.int64)
            else:  # mode: the most frequent value, ties to the first in sort order
                counts = self.modes[name][0].dropna(subset=["v"]).sort_values(["k", "w", "n", "v"],
                                                                              ascending=[True, True, False, True])
                out[name] = counts.drop_duplicates(["k", "w"]).set_index(["k", "w"])["v"].reindex(table.index)
        out = out.reset_index()
        starts = pd.to_datetime(out["w"] * self.window, unit="s", utc=True)
        out.insert(0, self.id_column, out["k"].astype(str) + "@" + starts.dt.strftime("%Y-%m-%dT%H:%MZ"))
        out.insert(1, self.raw.key, out.pop("k"))
        out.insert(2, "window_start", starts.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
        return out.drop(columns="w").sort_values(self.id_column).reset_index(drop=True)


def _line_sample(outcomes: list, events: pd.DataFrame, bad: np.ndarray, outside: np.ndarray, raw: RawLogs,
                 rng: np.random.Generator) -> pd.DataFrame:
    """A uniform sample of the chunk's lines: parsed or not, timestamp readable, inside the month, fields."""
    picked = rng.choice(len(outcomes), size=min(len(outcomes), SAMPLE_PER_CHUNK), replace=False)
    rows = outcomes[picked]
    parsed = rows >= 0
    frame = pd.DataFrame({"parsed": parsed.astype(int)})
    if not parsed.any():
        return frame
    at = np.maximum(rows, 0)
    frame["timestamp_ok"] = np.where(parsed, (~bad[at]).astype(float), np.nan)
    frame["in_month"] = np.where(parsed & ~bad[at], (~outside[at]).astype(float), np.nan)
    for column in raw.fields[1:]:
        frame[column] = np.where(parsed, events[column].to_numpy()[at], None)
    return frame


def _chunks(path: Path, chunk_lines: int):
    """The file as pyarrow string arrays of about ``chunk_lines`` whole lines (invalid UTF-8 replaced)."""
    with open(path, "rb") as handle:
        while block := handle.read(chunk_lines * 160):
            block += handle.readline()
            text = block.decode("utf-8", errors="replace")
            lines = pc.split_pattern(pa.array([text]), "\n").flatten()
            if text.endswith("\n"):
                lines = lines.slice(0, len(lines) - 1)
            yield pc.utf8_rtrim(lines, characters="\r")


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


def sessionise(files: list[Path], spec: DatasetSpec, month: str | None = None,
               chunk_lines: int = CHUNK_LINES, progress=None) -> tuple[pd.DataFrame, ParseReport, pd.DataFrame]:
    """Stream ``files`` into sessions. Returns (sessions, report, a sample of lines for the expectations)."""
    raw = spec.raw_logs
    if raw is None:
        raise RawLogError(f"spec '{spec.name}' has no raw_logs section: it cannot read raw logs")
    if not spec.id_column:
        raise RawLogError(f"spec '{spec.name}' needs an id_column to name its sessions")
    parser, sessioniser = _LineParser(raw), Sessioniser(raw, spec.id_column)
    report = ParseReport(files=[str(p) for p in files])
    bounds = _month_range(month)
    rng = np.random.default_rng(0)
    sample: list[pd.DataFrame] = []
    previous_hashes = np.array([], dtype=np.uint64)
    first = last = None
    fast = _FastPath(raw)
    for path in files:
        for lines in _chunks(path, chunk_lines):
            report.lines += len(lines)
            fast.learn_from(lines, parser)
            matched, fast_rows = fast.extract(lines)
            slow_rows, slow_at = [], []
            for at in np.flatnonzero(~matched):
                line = lines[int(at)].as_py()
                outcome = parser.parse(line)
                if type(outcome) is str:
                    report.problem(outcome, line)
                    continue
                fast.learn(line)
                slow_rows.append(outcome)
                slow_at.append(at)
            slow = pd.DataFrame(slow_rows, columns=raw.fields)
            slow["_line"] = np.asarray(slow_at, dtype=np.int64)
            events = pd.concat([fast_rows, slow], ignore_index=True) if len(slow) else fast_rows
            outcomes = np.full(len(lines), -1)
            outcomes[events["_line"].to_numpy(dtype=np.int64)] = np.arange(len(events))
            if events.empty:
                sample.append(_line_sample(outcomes, events, np.zeros(0, bool), np.zeros(0, bool), raw, rng))
                continue
            kept_lines = _LazyLines(lines, events["_line"].to_numpy(dtype=np.int64))
            kept_lines = _LazyLines(lines, events["_line"].to_numpy(dtype=np.int64))
            stamps = utc_seconds(events[raw.time])
            bad = np.isnan(stamps)
            if bounds is not None:
                outside = ~bad & ((stamps < bounds[0]) | (stamps >= bounds[1]))
                for i in np.flatnonzero(outside):
                    report.problem("timestamp_outside_month", kept_lines[i])
            else:
                outside = np.zeros(len(events), dtype=bool)
            for i in np.flatnonzero(bad):
                report.problem("bad_timestamp", kept_lines[i])
            usable = ~(bad | outside)
            sample.append(_line_sample(outcomes, events, bad, outside, raw, rng))
            events = events.loc[usable].copy()
            events["_ts"] = stamps[usable].astype(np.int64)
            # Exact repeats (the same event delivered twice) within this chunk or the one before.
            hashes = pd.util.hash_pandas_object(events.drop(columns=[raw.time, "_line"]), index=False).to_numpy()
            repeat = pd.Series(hashes).duplicated().to_numpy() | np.isin(hashes, previous_hashes)
            report.duplicates += int(repeat.sum())
            previous_hashes = hashes
            events = events.loc[~repeat].reset_index(drop=True)
            report.parsed += len(events)
            if events.empty:
                continue
            for name, rule in raw.lookups.items():
                events[name] = _lookup(events[rule.source], rule)
            events["_window"] = events["_ts"] // sessioniser.window
            sessioniser.add(events)
            low, high = int(events["_ts"].min()), int(events["_ts"].max())
            first, last = min(first, low) if first is not None else low, max(last, high) if last is not None else high
            if progress is not None:
                progress(report)
    if report.parsed == 0:
        raise RawLogError(f"no usable event in {len(files)} file(s): {dict(report.problems)}")
    report.first_event = datetime.fromtimestamp(first, timezone.utc).isoformat()
    report.last_event = datetime.fromtimestamp(last, timezone.utc).isoformat()
    report.duplicates = int(report.duplicates)
    return sessioniser.sessions(), report, pd.concat(sample, ignore_index=True)


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
