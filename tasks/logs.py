"""Raw event logs → sessions: streaming parse of JSON lines and syslog-style text, then per-session
aggregates as the spec's ``raw_logs`` section describes.

Lines are read in chunks; each chunk is parsed, normalised (timestamps to UTC), de-duplicated and
reduced to partial per-session aggregates, so memory follows the number of sessions, not the number
of lines. Every line that cannot be used is counted by kind with a few samples kept: nothing is
dropped silently.
"""

from __future__ import annotations

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
import pyarrow as pa
import pyarrow.compute as pc

from tasks.spec import Aggregation, DatasetSpec, RawLogs

LOG_SUFFIXES = (".jsonl", ".json", ".log", ".txt")
CHUNK_LINES = 250_000
SAMPLES_PER_KIND = 5
CONTEXT_LINES = 10_000  # lines before a block checked for repeats across the block boundary
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
    """Per line format, a template learnt from the first good line: a pattern that validates a whole
    chunk at once (RE2 match, no captures) and where each field sits once the line is split on
    quotes (then spaces). Lines it does not validate go to ``_LineParser``, which parses reordered or
    escaped records and names what is wrong with the rest."""

    def __init__(self, raw: RawLogs):
        self.raw = raw
        self.templates: dict[str, tuple[str, dict[str, tuple]]] = {}

    def learn(self, line: str) -> None:
        if line.startswith("{") and "json" not in self.templates:
            self._learn_json(line)
        elif not line.startswith("{") and "syslog" not in self.templates:
            self._learn_syslog(line)

    def _learn_json(self, line: str) -> None:
        fields, integers = set(self.raw.fields), set(self.raw.integer_fields)
        record = orjson.loads(line)
        if not fields <= set(record):
            return
        parts, where, token = [], {}, 1  # split on '"': token 0 is '{', then key, separator, [value, separator]
        for key, value in record.items():
            if isinstance(value, str):
                if key in integers:
                    return
                parts.append(f'"{re.escape(key)}"\\s*:\\s*"[^"\\\\]*"')
                where[key] = (token + 2, None, None)
                token += 4
            elif isinstance(value, (int, float, bool)) or value is None:
                if key in fields and key not in integers:
                    return
                number = r"\d+" if key in integers else r"(?:-?[0-9.eE+]+|true|false|null)"
                parts.append(f'"{re.escape(key)}"\\s*:\\s*{number}')
                where[key] = (token + 1, None, ":,} \t")
                token += 2
            else:
                return
        pattern = r"^\{\s*" + r"\s*,\s*".join(parts) + r"\s*\}$"
        self.templates["json"] = (pattern, {name: where[name] for name in self.raw.fields})

    def _learn_syslog(self, line: str) -> None:
        head = re.match(r"^(\S+) (\S+) ([^ :]+): ", line)
        if head is None:
            return
        pairs = SYSLOG_PAIR.findall(line, head.end())
        names = [self.raw.syslog_keys.get(key, key) for key, _ in pairs]
        integers = set(self.raw.integer_fields)
        if not set(self.raw.fields) - {self.raw.time} <= set(names):
            return
        parts, where = [], {self.raw.time: (0, 0, None)}
        token, word = 0, 3  # split on '"', then the unquoted token on ' '; the head is 3 words
        for (key, value), name in zip(pairs, names):
            if value.startswith('"'):
                parts.append(f'{re.escape(key)}="[^"]*"')
                where[name] = (token + 1, None, None)
                token, word = token + 2, 1  # the next unquoted token starts with the separating space
                continue
            parts.append(f"{re.escape(key)}=" + (r"\d+" if name in integers else r'[^\s"]+'))
            where[name] = (token, word, len(key) + 1)
            word += 1
        pattern = r"^\S+ \S+ [^ :]+: " + " ".join(parts) + "$"
        self.templates["syslog"] = (pattern, {name: where[name] for name in self.raw.fields})

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

    def extract(self, lines: pa.Array) -> tuple[np.ndarray, pd.DataFrame]:
        """(validated mask, the validated lines' fields in the spec's order) for a chunk of lines."""
        matched = np.zeros(len(lines), dtype=bool)
        frames = []
        for pattern, where in self.templates.values():
            hit = pc.match_substring_regex(lines, pattern).to_numpy(zero_copy_only=False) & ~matched
            if not hit.any():
                continue
            tokens = pc.split_pattern(lines.filter(pa.array(hit)), '"')
            words: dict[int, pa.Array] = {}
            columns = {}
            for name in self.raw.fields:
                token, word, trim = where[name]
                value = pc.list_element(tokens, token)
                if word is not None:
                    if token not in words:
                        words[token] = pc.split_pattern(value, " ")
                    value = pc.list_element(words[token], word)
                    if trim:
                        value = pc.utf8_slice_codeunits(value, trim)
                elif trim:
                    value = pc.utf8_trim(value, characters=trim)
                columns[name] = value.to_numpy(zero_copy_only=False)
            frame = pd.DataFrame(columns)
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


def _hashes(values: pd.Series) -> np.ndarray:
    """64-bit hashes of values (equal values, equal hashes; collisions negligible at these counts)."""
    return pd.util.hash_array(values.to_numpy(dtype=object) if values.dtype == object else values.to_numpy())


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
        key_hash = None
        sums = {_ROWS: np.ones(len(events), dtype=np.int64)}
        for name, rule in self.raw.sessions.items():
            if rule.how in ("count", "sum"):
                mask = self._where(events, rule)
                value = np.ones(len(events)) if rule.how == "count" else events[rule.field].to_numpy(dtype=float)
                sums[name] = np.where(mask, value, 0.0)
            elif rule.how == "nunique":  # (session, value) pairs as 64-bit hashes: 24 bytes a pair, numeric dedupe
                key_hash = _hashes(events[self.raw.key]) if key_hash is None else key_hash
                frame = pd.DataFrame({"kh": key_hash, "w": events["_window"].to_numpy(), "h": _hashes(events[rule.field])})
                self.distinct[name].append(frame.drop_duplicates())
            elif rule.how == "mode":
                frame = pd.DataFrame({"k": events[self.raw.key], "w": events["_window"], "v": events[rule.field]})
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

    def partials(self) -> tuple:
        return self.additive, dict(self.distinct), dict(self.modes)

    def merge(self, partials: tuple) -> None:
        """Add another sessioniser's partial aggregates (e.g. from a worker process)."""
        additive, distinct, modes = partials
        self.additive.extend(additive)
        for name, parts in distinct.items():
            self.distinct[name].extend(parts)
        for name, parts in modes.items():
            self.modes[name].extend(parts)
        if len(self.additive) >= 8:
            self.compact()

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
                counts = self.distinct[name][0].groupby(["kh", "w"]).size()
                at = pd.MultiIndex.from_arrays([_hashes(pd.Series(table.index.get_level_values(0))),
                                                table.index.get_level_values(1)])
                out[name] = counts.reindex(at).fillna(0).astype(np.int64).to_numpy()
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


def _line_sample(outcomes: np.ndarray, events: pd.DataFrame, bad: np.ndarray, outside: np.ndarray, raw: RawLogs,
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


def _parse(lines: pa.Array, parser: _LineParser, fast: _FastPath, report: ParseReport | None) -> pd.DataFrame:
    """The lines' events (spec fields, ``_line`` position, ``_ts`` epoch seconds or NaN); problems to ``report``."""
    fast.learn_from(lines, parser)
    matched, fast_rows = fast.extract(lines)
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
        slow_at.append(at)
    events = fast_rows
    if slow_rows:
        slow = pd.DataFrame(slow_rows, columns=parser.fields)
        slow["_line"] = np.asarray(slow_at, dtype=np.int64)
        events = pd.concat([fast_rows, slow], ignore_index=True)
    events["_ts"] = utc_seconds(events[parser.fields[0]]) if len(events) else np.zeros(0)
    return events


def _event_hashes(events: pd.DataFrame, time_field: str) -> np.ndarray:
    """One 64-bit hash per event (its fields with the time normalised): equal events, equal hashes."""
    return pd.util.hash_pandas_object(events.drop(columns=[time_field, "_line"]), index=False).to_numpy()


def _process_block(spec: DatasetSpec, block: bytes, context: bytes, bounds, seed: int) -> dict:
    """One block of whole lines → partial session aggregates, its share of the parse report and of the
    line sample. ``context`` (the lines just before the block) lets repeats across the boundary be seen."""
    raw = spec.raw_logs
    parser, fast = _LineParser(raw), _FastPath(raw)
    report, sessioniser = ParseReport(), Sessioniser(raw, spec.id_column)
    rng = np.random.default_rng(seed)
    lines = _split_lines(block)
    report.lines = len(lines)
    events = _parse(lines, parser, fast, report)
    outcomes = np.full(len(lines), -1)
    outcomes[events["_line"].to_numpy(dtype=np.int64)] = np.arange(len(events))
    result = {"report": report, "partials": None, "sample": None, "first": None, "last": None}
    kept_lines = _LazyLines(lines, events["_line"].to_numpy(dtype=np.int64))
    stamps = events["_ts"].to_numpy(dtype=float)
    bad = np.isnan(stamps)
    outside = np.zeros(len(events), dtype=bool)
    if bounds is not None:
        outside = ~bad & ((stamps < bounds[0]) | (stamps >= bounds[1]))
        for i in np.flatnonzero(outside):
            report.problem("timestamp_outside_month", kept_lines[i])
    for i in np.flatnonzero(bad):
        report.problem("bad_timestamp", kept_lines[i])
    result["sample"] = _line_sample(outcomes, events, bad, outside, raw, rng)
    events = events.loc[~(bad | outside)].copy()
    events["_ts"] = events["_ts"].astype(np.int64)
    # Exact repeats (the same event delivered twice) within the block or just before it.
    hashes = _event_hashes(events, raw.time)
    repeat = pd.Series(hashes).duplicated().to_numpy()
    if context:
        before = _parse(_split_lines(context), parser, fast, None)
        before = before.loc[before["_ts"].notna()].copy()
        before["_ts"] = before["_ts"].astype(np.int64)
        repeat |= np.isin(hashes, _event_hashes(before, raw.time))
    report.duplicates = int(repeat.sum())
    events = events.loc[~repeat].reset_index(drop=True)
    report.parsed = len(events)
    if events.empty:
        return result
    for name, rule in raw.lookups.items():
        events[name] = _lookup(events[rule.source], rule)
    events["_window"] = events["_ts"] // sessioniser.window
    sessioniser.add(events)
    sessioniser.compact()
    result.update(partials=sessioniser.partials(), first=int(events["_ts"].min()), last=int(events["_ts"].max()))
    return result


def _blocks(files: list[Path], chunk_lines: int, context_lines: int = CONTEXT_LINES):
    """(block of whole lines, the last ``context_lines`` lines before it in the same file) per chunk."""
    for path in files:
        tail = b""
        with open(path, "rb") as handle:
            while block := handle.read(chunk_lines * 160):
                block += handle.readline()
                yield block, tail
                tail = b"".join(block[-context_lines * 400:].splitlines(keepends=True)[-context_lines:])


def sessionise(files: list[Path], spec: DatasetSpec, month: str | None = None, chunk_lines: int = CHUNK_LINES,
               progress=None, workers: int | None = None) -> tuple[pd.DataFrame, ParseReport, pd.DataFrame]:
    """Stream ``files`` into sessions on ``workers`` processes (default: one per core).
    Returns (sessions, report, a uniform sample of lines for the raw-log expectations)."""
    raw = spec.raw_logs
    if raw is None:
        raise RawLogError(f"spec '{spec.name}' has no raw_logs section: it cannot read raw logs")
    if not spec.id_column:
        raise RawLogError(f"spec '{spec.name}' needs an id_column to name its sessions")
    sessioniser = Sessioniser(raw, spec.id_column)
    report = ParseReport(files=[str(p) for p in files])
    bounds = _month_range(month)
    samples, first, last = [], [], []
    workers = workers or os.cpu_count() or 1
    small = sum(path.stat().st_size for path in files) < 2 * chunk_lines * 160

    def absorb(result: dict) -> None:
        part = result["report"]
        report.lines += part.lines
        report.parsed += part.parsed
        report.duplicates += part.duplicates
        for kind, count in part.problems.items():
            report.problems[kind] += count
            room = SAMPLES_PER_KIND - len(report.samples[kind])
            report.samples[kind].extend(part.samples[kind][:max(room, 0)])
        samples.append(result["sample"])
        if result["partials"] is not None:
            sessioniser.merge(result["partials"])
            first.append(result["first"])
            last.append(result["last"])
        if progress is not None:
            progress(report)

    if workers == 1 or small:
        for number, (block, context) in enumerate(_blocks(files, chunk_lines)):
            absorb(_process_block(spec, block, context, bounds, number))
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            pending = deque()
            for number, (block, context) in enumerate(_blocks(files, chunk_lines)):
                pending.append(pool.submit(_process_block, spec, block, context, bounds, number))
                if len(pending) >= 2 * workers:  # bounded: memory follows the workers, not the file
                    absorb(pending.popleft().result())
            while pending:
                absorb(pending.popleft().result())
    if report.parsed == 0:
        raise RawLogError(f"no usable event in {len(files)} file(s): {dict(report.problems)}")
    report.first_event = datetime.fromtimestamp(min(first), timezone.utc).isoformat()
    report.last_event = datetime.fromtimestamp(max(last), timezone.utc).isoformat()
    return sessioniser.sessions(), report, pd.concat(samples, ignore_index=True)


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
