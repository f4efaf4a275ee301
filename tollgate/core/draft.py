"""Draft a dataset spec and its expectation suite from the data itself (``tollgate init``).

The draft is for a person to review, not a guess the pipeline trusts: it reads how the file is written
(encoding, separator, decimal and thousands marks: sniffed from the bytes, and the evidence said), which
column is the id, which are numbers and which are categories (every value seen), plausible ranges with a
margin, the target's labels and a band around its rate; the suite follows from the spec as the shipped
ones do. What was inferred, and what must be checked, is written at the top of the spec.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import ValidationError

from tollgate.config.spec import DEFAULT_READ, ReadOptions
from tollgate.core.clean import normalise_label, parse_numeric
from tollgate.core.ingest import READABLE_SUFFIXES, month_of, read_batch

SNIFF_BYTES = 256 * 1024
SNIFF_LINES = 500
SEPARATORS = (",", ";", "\t", "|")
DRAFT_ROWS = 200_000
"""Rows read per file to draft from: enough for types, categories and ranges, bounded for large exports."""
NUMERIC_SHARE = 0.95
"""A column is numeric when at least this share of its present values read as numbers in the file's format."""
MAX_CATEGORIES = 200
"""More distinct text values than this (or than a fifth of the rows) is free text or a key: kept as extra."""
POSITIVE_WORDS = frozenset({"1", "yes", "y", "true", "t", "positive", "attack", "fraud", "bad"})
ID_NAME = re.compile(r"(^|_)(id|key|uuid|guid)$")
DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
DECIMAL_POINT = re.compile(r"[+-]?\d*\.\d+")
BLOCK_SECTIONS = frozenset({"rename", "read", "costs"})
"""Sections written one entry per line (the rest: a line per column)."""
GROUPED_POINT = re.compile(r"[+-]?\d{1,3}(\.\d{3})+(,\d+)?")


class DraftError(ValueError):
    """Data a spec cannot be drafted from: the message says what to give instead."""


@dataclass(frozen=True)
class Sniffed:
    """How a file is written, and why we think so (said to the person reviewing the draft)."""

    read: ReadOptions
    evidence: list[str]


@dataclass
class Draft:
    """A spec (as YAML-ready data), its suite's bounds, and the notes for the reviewer."""

    spec: dict[str, Any]
    target_rate: tuple[float, float]
    rows: tuple[int, int]
    notes: list[str] = field(default_factory=list)

    def yaml_text(self) -> str:
        """The spec with the reviewer's notes as a comment block on top."""
        header = [f"# Drafted by `tollgate init` from {self.spec.get('raw_dir', 'the data')}. Review before use:"]
        header += [f"#  - {note}" for note in self.notes]
        body = "".join(
            yaml.safe_dump(
                {key: value},
                sort_keys=False,
                allow_unicode=True,
                width=110,
                default_flow_style=None if isinstance(value, dict) and key not in BLOCK_SECTIONS else False,
            )
            for key, value in self.spec.items()
        )
        return "\n".join(header) + "\n" + body


def sniff(path: Path) -> Sniffed:
    """Encoding, separator, decimal and thousands marks of a CSV file, from its first bytes."""
    if path.suffix == ".parquet":
        return Sniffed(DEFAULT_READ, ["Parquet: typed columns, no read options needed"])
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    complete = len(head) < SNIFF_BYTES
    if not complete and b"\n" in head:
        head = head[: head.rindex(b"\n")]  # never judge a cut line or a cut character
    encoding, evidence = _encoding(head)
    text = head.decode(encoding)
    lines = [line for line in text.splitlines() if line.strip()][:SNIFF_LINES]
    if not lines:
        raise DraftError(f"{path} is empty")
    separator, fields = _separator(lines)
    evidence.append(f"separator {_shown(separator)}: {fields} fields on every sampled line")
    cells = [cell.strip() for row in csv.reader(io.StringIO("\n".join(lines[1:])), delimiter=separator) for cell in row]
    comma = sum(1 for cell in cells if DECIMAL_COMMA.fullmatch(cell))
    point = sum(1 for cell in cells if DECIMAL_POINT.fullmatch(cell) and not GROUPED_POINT.fullmatch(cell))
    decimal, thousands = ".", ","
    if separator != "," and comma > point:
        decimal = ","
        grouped = sum(1 for cell in cells if GROUPED_POINT.fullmatch(cell) and "." in cell)
        thousands = "." if grouped else ""
        evidence.append(
            f"decimal comma: {comma:,} values like '265,1' and {point:,} like '265.1'"
            + (f"; {grouped:,} grouped like '1.234,5', so '.' groups thousands" if grouped else "; no grouping seen")
        )
    elif comma and separator != ",":
        evidence.append(f"decimal point: {point:,} values like '265.1' against {comma:,} like '265,1'")
    options = ReadOptions(separator=separator, decimal=decimal, thousands=thousands, encoding=encoding)
    return Sniffed(options, evidence)


def _with_overrides(sniffed: Sniffed, overrides: dict[str, str]) -> Sniffed:
    """The sniffed options with the person's own on top (a decimal comma drops the default ',' grouping)."""
    if not overrides:
        return sniffed
    options = {**sniffed.read.model_dump(), **overrides}
    if overrides.get("decimal") == ",":
        options["thousands"] = ""
    try:
        read = ReadOptions(**options)
    except ValidationError as error:  # one line: what is wrong with the options, not pydantic's whole report
        raise DraftError(f"read options: {'; '.join(problem['msg'] for problem in error.errors())}") from error
    given = ", ".join(f"{key} {value!r}" for key, value in overrides.items())
    return Sniffed(read, [*sniffed.evidence, f"as given: {given}"])


def _encoding(head: bytes) -> tuple[str, list[str]]:
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", ["encoding utf-8 with a byte-order mark"]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        try:
            head.decode("cp1252")
        except UnicodeDecodeError:
            return "latin-1", [f"encoding latin-1: not UTF-8 (byte {error.start}) nor cp1252"]
        return "cp1252", [f"encoding cp1252: not UTF-8 (byte 0x{head[error.start]:02x} at {error.start})"]
    return "utf-8", ["encoding utf-8"]


def _separator(lines: list[str]) -> tuple[str, int]:
    """The separator that splits the header into the most fields and every sampled line into as many."""
    best: tuple[float, int, str] = (0.0, 1, ",")
    for mark in SEPARATORS:
        counts = [len(row) for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=mark)]
        if not counts or counts[0] < 2:
            continue
        agreeing = sum(1 for count in counts if count == counts[0]) / len(counts)
        best = max(best, (agreeing, counts[0], mark))
    if best[0] < 0.9:
        raise DraftError(
            "cannot tell the separator: no one of , ; tab | splits the lines into the same number of fields; "
            "give it with --separator"
        )
    return best[2], best[1]


def _shown(mark: str) -> str:
    return "'\\t'" if mark == "\t" else repr(mark)


def column_name(source: str) -> str:
    """``customerID`` → ``customer_id``, ``Monthly Charges (€)`` → ``monthly_charges``: what a spec calls a column."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", source.strip())
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower() or "column"
    return f"c_{text}" if text[0].isdigit() else text


def draft_spec(
    source: Path,
    target: str,
    name: str,
    spec_dir: Path,
    suite_path: Path,
    positive: str | None = None,
    negative: str | None = None,
    id_column: str | None = None,
    read_overrides: dict[str, str] | None = None,
) -> Draft:
    """Draft a spec for the file (or folder of monthly batches) ``source`` predicting ``target``; the read
    options are sniffed from its first file, with ``read_overrides`` (separator, decimal, encoding) winning."""
    files = _files(source)
    sniffed = _with_overrides(sniff(files[0]), read_overrides or {})
    batches = [read_batch(path, sniffed.read, rows=DRAFT_ROWS) for path in files]
    frame = pd.concat(batches, ignore_index=True)
    if target not in frame.columns:
        raise DraftError(
            f"no column {target!r} in {files[0].name}; its columns are {', '.join(map(str, frame.columns))}"
        )
    if id_column is not None and id_column not in frame.columns:
        raise DraftError(f"--id {id_column!r} is not a column of {files[0].name}")
    notes = [f"read: {'; '.join(sniffed.evidence)}"]
    names = _names([str(column) for column in frame.columns])
    target_section, labels, target_note = _target(frame[target], names[target], positive, negative)
    notes.append(target_note)
    identifier = id_column or _id_column(frame, target, sniffed.read)
    if identifier is not None and id_column is None:
        notes.append(f"id_column {names[identifier]}: every value present and unique (duplicates of it are dropped)")
    numeric: dict[str, dict[str, Any]] = {}
    categorical: dict[str, list[str]] = {}
    extra: list[str] = []
    for column in frame.columns:
        if column in (target, identifier):
            continue
        kind = _column(frame[column], sniffed.read, names[column], numeric, categorical, extra)
        if kind:
            notes.append(kind)
    if not numeric and not categorical:
        raise DraftError(f"no column of {files[0].name} but the target and id can be a model input")
    monthly = len(files) > 1 and all(month_of(path) for path in files)
    rate = float(labels.mean())
    spec: dict[str, Any] = {
        "name": name,
        "description": f"Drafted from {files[0].name}: predicts {names[target]} ({labels.sum():,.0f} of "
        f"{len(labels):,} rows positive).",
    }
    if identifier is not None:
        spec["id_column"] = names[identifier]
    spec["target"] = target_section
    spec["columns"] = {"numeric": numeric, "categorical": categorical, **({"extra": extra} if extra else {})}
    renamed = {column: names[column] for column in frame.columns if names[column] != column}
    if renamed:
        spec["rename"] = renamed
    if sniffed.read != DEFAULT_READ:
        spec["read"] = sniffed.read.model_dump(exclude_defaults=True)
    spec["split"] = {"strategy": "time" if monthly else "stratified", "holdout_fraction": 0.2, "seed": 42}
    notes.append(
        "split: " + ("the latest monthly batch is the holdout" if monthly else "one export: a stratified 20 % holdout")
    )
    spec["costs"] = {
        "false_negative": 5.0,
        "false_positive": 1.0,
        "rationale": "Drafted: a missed positive costs five false alarms. Replace with the business's figures "
        "(or a decision section: value, success rate, action cost, capacity).",
    }
    notes.append("costs: drafted as 5:1 (missed positive : false alarm); put in the real figures")
    small = [column for column, values in categorical.items() if 2 <= len(values) <= 8]
    segments = sorted(small, key=lambda column: len(categorical[column]) == 2)[:3]  # several values first
    spec["quality"] = {"suite": os.path.relpath(suite_path, spec_dir), "segment_columns": segments}
    project = spec_dir.resolve().parent.parent
    inside = source.resolve().is_relative_to(project)
    spec["raw_dir"] = os.path.relpath(source.resolve(), spec_dir.resolve()) if inside else str(source.resolve())
    sizes = [len(batch) for batch in batches]
    low, high = rate / 2, 1 - (1 - rate) / 2
    return Draft(
        spec=spec,
        target_rate=(round(low, 4), round(high, 4)),
        rows=(max(1, min(sizes) // 10), max(sizes) * 10),
        notes=[*notes, f"suite: target rate {rate:.1%} seen, a batch outside {low:.1%}–{high:.1%} is stopped"],
    )


def _files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if source.is_dir():
        files = sorted(path for path in source.iterdir() if path.suffix in READABLE_SUFFIXES and path.is_file())
        if files:
            return files
        raise DraftError(f"no .csv or .parquet files in {source}")
    raise DraftError(f"{source} does not exist")


def _names(columns: list[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    taken: Counter[str] = Counter()
    for column in columns:
        base = column_name(column)
        taken[base] += 1
        names[column] = base if taken[base] == 1 else f"{base}_{taken[base]}"
    return names


def _present(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text[text.notna() & (text != "")]


def _labels(values: pd.Series) -> dict[str, str]:
    """Normalised label → its most frequent spelling."""
    spellings: dict[str, Counter[str]] = {}
    for value in _present(values):
        spellings.setdefault(normalise_label(value), Counter())[str(value)] += 1
    return {label: counts.most_common(1)[0][0] for label, counts in spellings.items()}


def _target(
    values: pd.Series, column: str, positive: str | None, negative: str | None
) -> tuple[dict[str, Any], pd.Series, str]:
    """The spec's target section, 1/0 per labelled row under it, and the reviewer's note."""
    labels = _labels(values)
    if len(labels) < 2:
        raise DraftError(f"the target has {len(labels)} label(s) ({', '.join(labels.values())}): nothing to learn")
    chosen_negative, chosen_positive = _sides(values, labels, positive, negative)
    section: dict[str, Any] = {"column": column, "positive": chosen_positive, "negative": chosen_negative}
    normalised = _present(values).map(normalise_label)
    if len(labels) > 2:
        section["others_are_positive"] = True
        note = f"target: every label but {chosen_negative!r} is positive ({len(labels)} labels)"
        return section, (normalised != normalise_label(chosen_negative)).astype(float), note
    guessed = "" if positive or negative else " (guessed: check)"
    note = f"target: {chosen_positive!r} is positive, {chosen_negative!r} negative{guessed}"
    return section, (normalised == normalise_label(chosen_positive)).astype(float), note


def _sides(values: pd.Series, labels: dict[str, str], positive: str | None, negative: str | None) -> tuple[str, str]:
    """(negative, positive) spellings; with more than two labels the positive is a name for all the others."""
    known = set(labels)
    for given, option in ((positive, "--positive"), (negative, "--negative")):
        if (
            given is not None
            and normalise_label(given) not in known
            and not (option == "--positive" and len(labels) > 2)
        ):
            raise DraftError(f"{option} {given!r} is not a label of the target: {', '.join(sorted(labels.values()))}")
    if len(labels) > 2:
        if negative is None:
            shown = ", ".join(sorted(labels.values())[:8])
            raise DraftError(
                f"the target has {len(labels)} labels ({shown}…): name the negative one with --negative "
                "(every other label is then positive)"
            )
        return labels[normalise_label(negative)], positive or "positive"
    if positive is not None:
        chosen = normalise_label(positive)
    elif negative is not None:
        chosen = next(label for label in labels if label != normalise_label(negative))
    else:
        worded = [label for label in labels if label in POSITIVE_WORDS]
        rarer = str(_present(values).map(normalise_label).value_counts().index[-1])
        chosen = worded[0] if len(worded) == 1 else rarer
    other = next(label for label in labels if label != chosen)
    return labels[other], labels[chosen]


def _id_column(frame: pd.DataFrame, target: str, read: ReadOptions) -> str | None:
    """The first column present and unique in every row that is named like an id or is text, not numbers."""
    for column in frame.columns:
        if column == target:
            continue
        values = _present(frame[column])
        if len(values) < 0.99 * len(frame) or values.nunique() < 0.99 * len(frame):
            continue
        named = ID_NAME.search(column_name(str(column))) is not None
        parsed = parse_numeric(values, read)[0]
        if named or parsed.notna().mean() < NUMERIC_SHARE:
            return str(column)
    return None


def _column(
    values: pd.Series,
    read: ReadOptions,
    name: str,
    numeric: dict[str, dict[str, Any]],
    categorical: dict[str, list[str]],
    extra: list[str],
) -> str:
    """Declare one column; returns a note for the reviewer when the choice deserves a look."""
    present = _present(values)
    if present.empty:
        extra.append(name)
        return f"{name}: empty in the sample, kept as extra (not a feature)"
    parsed, _, unreadable = parse_numeric(present, read)
    if parsed.notna().mean() >= NUMERIC_SHARE:
        numbers = parsed.dropna()
        integer = bool((numbers == numbers.round()).all())
        numeric[name] = _range(float(numbers.min()), float(numbers.max()), integer)
        if unreadable:
            return f"{name}: numeric; {unreadable:,} values are not numbers in the read format (they become missing)"
        return ""
    spellings: dict[str, Counter[str]] = {}
    for value in present:
        spellings.setdefault(value.casefold(), Counter())[value] += 1
    if len(spellings) > MAX_CATEGORIES or len(spellings) > max(20, len(present) // 5):
        extra.append(name)
        return f"{name}: {len(spellings):,} distinct text values: kept as extra (lineage), not a feature"
    ranked = sorted(spellings.values(), key=lambda counts: -sum(counts.values()))
    categorical[name] = [counts.most_common(1)[0][0] for counts in ranked]
    return f"{name}: {len(ranked)} categories, every value seen" if len(ranked) > 30 else ""


def _range(low: float, high: float, integer: bool) -> dict[str, Any]:
    """The plausible range: zero up when nothing is negative, half the observed span beyond each side."""
    if integer and low >= 0 and high <= 1:
        return {"min": 0, "max": 1, "integer": True}
    span = (high - low) or abs(high) or 1.0
    lower = 0.0 if low >= 0 else _round_out(low - span / 2, up=False)
    upper = _round_out(high + span / 2, up=True)
    if integer:
        return {"min": int(math.floor(lower)), "max": int(math.ceil(upper)), "integer": True}
    return {"min": lower, "max": upper}


def _round_out(value: float, up: bool) -> float:
    """``value`` to two significant digits, away from the data."""
    if value == 0:
        return 0.0
    step = 10.0 ** (math.floor(math.log10(abs(value))) - 1)
    rounded = (math.ceil if up else math.floor)(value / step) * step
    return round(rounded, 10)
