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


def _lookup(values: pd.Series, rule) -> pd.Series:
    text = values.astype(str)
    result = text.map(rule.values) if rule.values else pd.Series(np.nan, index=values.index, dtype=object)
    for needle, label in rule.contains.items():
        result = result.where(result.notna() | ~text.str.contains(needle, regex=False), label)
    return result.fillna(rule.default) if rule.default is not None else result


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
    rows = np.array([outcomes[i] if outcomes[i] is not None else -1 for i in picked])
    parsed = rows >= 0
    frame = pd.DataFrame({"parsed": parsed.astype(int)})
    frame["timestamp_ok"] = np.where(parsed, (~bad[np.maximum(rows, 0)]).astype(float), np.nan)
    frame["in_month"] = np.where(parsed & ~bad[np.maximum(rows, 0)], (~outside[np.maximum(rows, 0)]).astype(float), np.nan)
    for column in raw.fields[1:]:
        values = events[column].to_numpy()[np.maximum(rows, 0)]
        frame[column] = np.where(parsed, values, None)
    return frame


def log_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in LOG_SUFFIXES)
    if not files:
        raise RawLogError(f"no log files ({', '.join(LOG_SUFFIXES)}) in {folder}")
    return files


def _month_range(month: str | None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    if month is None:
        return None
    start = pd.Timestamp(datetime.strptime(month, "%Y-%m").replace(tzinfo=timezone.utc))
    slack = pd.Timedelta(days=1)  # a late or early line near the month's edge is still this month's traffic
    return start - slack, start + pd.offsets.MonthBegin(1) + slack


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
    for path in files:
        with open(path, "rb") as handle:
            while True:
                lines = handle.readlines(chunk_lines * 200)
                if not lines:
                    break
                rows, kept_lines, outcomes = [], [], []
                for raw_line in lines:
                    report.lines += 1
                    line = raw_line.decode("utf-8", errors="replace").rstrip("\r\n")
                    outcome = parser.parse(line)
                    if type(outcome) is str:
                        report.problem(outcome, line)
                        outcomes.append(None)
                        continue
                    outcomes.append(len(rows))
                    rows.append(outcome)
                    kept_lines.append(line)
                if not rows:
                    sample.append(pd.DataFrame({"parsed": np.zeros(min(len(outcomes), SAMPLE_PER_CHUNK), int)}))
                    continue
                events = pd.DataFrame(rows, columns=raw.fields)
                stamps = pd.to_datetime(events[raw.time], utc=True, format="ISO8601", errors="coerce")
                bad = stamps.isna().to_numpy()
                if bounds is not None:
                    outside = ~bad & ((stamps < bounds[0]) | (stamps >= bounds[1])).to_numpy()
                    for i in np.flatnonzero(outside):
                        report.problem("timestamp_outside_month", kept_lines[i])
                else:
                    outside = np.zeros(len(events), dtype=bool)
                for i in np.flatnonzero(bad):
                    report.problem("bad_timestamp", kept_lines[i])
                usable = ~(bad | outside)
                sample.append(_line_sample(outcomes, events, bad, outside, raw, rng))
                events, stamps = events.loc[usable], stamps[usable]
                events["_ts"] = (stamps.astype("int64") // 10**9).to_numpy()
                # Exact repeats (the same event delivered twice) within this chunk or the one before.
                hashes = pd.util.hash_pandas_object(events.drop(columns=[raw.time]), index=False).to_numpy()
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
