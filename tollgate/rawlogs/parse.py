"""Raw event log lines → the spec's raw fields: JSON lines and syslog-style text, one learnt regular expression
per line format run over a whole block (polars, in Rust), a per-line parser for the rest that names what is
wrong with each unusable line. Timestamps are normalised to UTC epoch seconds.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from tollgate.config.spec import RawLogs

LOG_SUFFIXES = (".jsonl", ".json", ".log", ".txt")
SAMPLES_PER_KIND = 5
SYSLOG_PAIR = re.compile(r'(\w+)=("[^"]*"|\S*)')
SYSLOG_HEAD = re.compile(r"^(\S+) \S+ [^:]+: ")


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
        return {
            "lines": self.lines,
            "parsed": self.parsed,
            "parse_rate": round(self.parse_rate, 6),
            "duplicates_dropped": self.duplicates,
            "unusable_by_kind": dict(self.problems),
            "samples": {kind: list(lines) for kind, lines in self.samples.items()},
            "first_event_utc": self.first_event,
            "last_event_utc": self.last_event,
            "files": self.files,
        }


class LineParser:
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
            record = {
                self.syslog_keys.get(key, key): value.strip('"') for key, value in SYSLOG_PAIR.findall(line, head.end())
            }
            record[self.fields[0]] = head.group(1)
        values = []
        for name in self.fields:
            value = record.get(name)
            if value is None or value == "":
                return "missing_field"
            if name in self.integers and type(value) is not int:
                if not (isinstance(value, str) and value.isdigit()):
                    return "bad_number"
                value = int(value)
            values.append(value)
        return tuple(values)


class FastPath:
    """Per line format, a template learnt from the first good line: one regular expression whose
    groups capture the spec's fields, run over a whole block at once (polars, in Rust). Lines it does
    not match go to ``LineParser``, which parses reordered or escaped records and names what is wrong
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
        for (key, value), name in zip(pairs, names, strict=False):
            if name not in self.raw.fields:
                parts.append(f"{re.escape(key)}=" + ('"[^"]*"' if value.startswith('"') else r'[^\s"]*'))
            elif value.startswith('"'):
                parts.append(f'{re.escape(key)}="(?P<{self._group(name)}>[^"]*)"')
            else:
                value = "[0-9]+" if name in self.raw.integer_fields else r'[^\s"]+'
                parts.append(f"{re.escape(key)}=(?P<{self._group(name)}>{value})")
        self.templates["syslog"] = f"^(?P<{self._group(self.raw.time)}>\\S+) \\S+ [^ :]+: " + " ".join(parts) + "$"

    def learn_from(self, lines: pa.Array, parser: LineParser, probe: int = 2000) -> None:
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
            frame = (
                pl.DataFrame({"line": text, "_line": np.arange(len(lines))})
                .filter(pl.Series(~matched))
                .select(pl.col("line").str.extract_groups(pattern), "_line")
                .unnest("line")
                .rename(names)
                .drop_nulls(self.raw.time)
                .with_columns(pl.col(name).cast(pl.Int64, strict=False) for name in self.raw.integer_fields)
            )
            usable = pl.all_horizontal(
                [pl.col(name) != "" for name in self.raw.text_fields]
                + [pl.col(name).is_not_null() for name in self.raw.integer_fields]
            )
            frame = frame.filter(usable).select(*self.raw.fields, "_line")  # the per-line parser says why not
            matched[frame["_line"].to_numpy()] = True
            frames.append(frame)
        if not frames:
            return matched, pl.DataFrame(schema=self.raw_schema())
        return matched, pl.concat(frames)

    def raw_schema(self) -> dict:
        return {
            **{name: pl.Int64 if name in self.raw.integer_fields else pl.String for name in self.raw.fields},
            "_line": pl.Int64,
        }


OFFSET = re.compile(r"^(?:\.\d{1,9})?(?:(Z)|([+-])(\d{2}):?(\d{2}))$")


def utc_seconds(values: pd.Series | pa.Array) -> np.ndarray:
    """ISO 8601 timestamps (``Z`` or a ``±HH:MM`` offset, optional fractions) → epoch seconds, NaN if unreadable."""
    text = values if isinstance(values, pa.Array) else pa.array(values.to_numpy(dtype=object), type=pa.string())
    local = pc.strptime(pc.utf8_slice_codeunits(text, 0, 19), format="%Y-%m-%dT%H:%M:%S", unit="s", error_is_null=True)
    seconds = pc.cast(local, pa.int64()).to_numpy(zero_copy_only=False).astype(float)
    codes, suffixes = pd.factorize(pc.utf8_slice_codeunits(text, 19, 64).to_numpy(zero_copy_only=False))
    offsets = np.full(len(suffixes) + 1, np.nan)
    for i, suffix in enumerate(suffixes):
        match = OFFSET.match(suffix or "")
        if match:
            offsets[i] = (
                0.0
                if match.group(1)
                else (1 if match.group(2) == "+" else -1) * (int(match.group(3)) * 3600 + int(match.group(4)) * 60)
            )
    return seconds - offsets[np.where(codes < 0, -1, codes)]


def split_lines(block: bytes) -> pa.Array:
    """A block of whole lines as a pyarrow string array (invalid UTF-8 replaced, line ends dropped)."""
    text = block.decode("utf-8", errors="replace")
    lines = pc.split_pattern(pa.array([text]), "\n").flatten()
    if text.endswith("\n"):
        lines = lines.slice(0, len(lines) - 1)
    return pc.utf8_rtrim(lines, characters="\r")


class LazyLines:
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


def parse_lines(lines: pa.Array, parser: LineParser, fast: FastPath, report: ParseReport | None) -> pl.DataFrame:
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
        slow = pl.DataFrame(
            [(*row, at) for row, at in zip(slow_rows, slow_at, strict=False)], schema=fast.raw_schema(), orient="row"
        )
        events = pl.concat([events, slow])
    stamps = utc_seconds(events[parser.fields[0]].to_arrow()) if len(events) else np.zeros(0)
    return events.with_columns(_ts=pl.Series(stamps, dtype=pl.Float64))
