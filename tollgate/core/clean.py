"""Cleaning: deterministic repairs that need no learning, every one of them counted.

``clean_frame`` is the single cleaning function: the flow applies it to monthly batches and the service
applies it (or ``clean_record``, held equal to it) to each request, so a value is repaired the same way in
training and in production.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from tollgate.config.spec import DEFAULT_READ, DatasetSpec, ReadOptions
from tollgate.core.batch import Batch

# Currency signs exports put around numbers; any other character must be part of the spec's number format.
CURRENCY = "$€£"
INTEGER = re.compile(r"[+-]?\d+")  # read the same under any decimal mark


@lru_cache(maxsize=16)
def _number_pattern(decimal: str, thousands: str) -> re.Pattern[str]:
    """A number written in exactly one format: digits, optionally grouped by threes with the thousands mark,
    optionally a decimal part after the decimal mark (and a point-decimal exponent)."""
    grouped = rf"\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})+|" if thousands else ""
    exponent = r"(?:[eE][+-]?\d+)?" if decimal == "." else ""
    return re.compile(rf"[+-]?(?:{grouped}\d+)(?:{re.escape(decimal)}\d+)?{exponent}|[+-]?{re.escape(decimal)}\d+")


def _as_point_decimal(text: str, read: ReadOptions) -> str | None:
    """``text`` as a number Python reads (point decimal, no grouping), or None when it is not one in the
    spec's format: ``265,1`` under a decimal point is not guessed to be 265.1 or 2,651."""
    core = text.strip().strip(CURRENCY).strip()
    if not _number_pattern(read.decimal, read.thousands).fullmatch(core):
        return None
    if read.thousands:
        core = core.replace(read.thousands, "")
    return core.replace(read.decimal, ".")


@dataclass
class CleaningReport:
    """What cleaning did, by kind and column; ``rows_dropped`` says why each dropped row went."""

    rows_in: int
    rows_out: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    values_repaired: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, kind: str, column: str, number: float) -> None:
        if number:
            per_column = self.values_repaired.setdefault(kind, {})
            per_column[column] = per_column.get(column, 0) + int(number)

    def drop(self, reason: str, number: float) -> None:
        if number:
            self.rows_dropped[reason] = self.rows_dropped.get(reason, 0) + int(number)

    @property
    def total_repaired(self) -> int:
        return sum(sum(per_column.values()) for per_column in self.values_repaired.values())


@dataclass(frozen=True)
class CleanData:
    frame: pd.DataFrame
    report: CleaningReport


def parse_numeric(values: pd.Series, read: ReadOptions = DEFAULT_READ) -> tuple[pd.Series, int, int]:
    """Parse numbers written in the spec's format (``read``): with the defaults '1,234.50', ' 70 ', '$12'
    become floats, and '265,1' or '1.234,50' (another decimal mark) become missing, never a guess.

    Returns the parsed values, how many needed repair (numbers stored as text) and how many were
    present but unparseable (they become missing). A categorical column is parsed once per distinct value.
    """
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float), 0, 0
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, distinct = distinct_codes(values)
        parsed, repaired, unparseable = _parse_text(pd.Series(distinct, dtype=object), read)
        times = np.bincount(codes[codes >= 0], minlength=len(distinct))
        numbers = np.append(parsed.to_numpy(dtype=float), np.nan)[codes]  # code -1 (missing) takes the last
        return (
            pd.Series(numbers, index=values.index),
            int(times[repaired.to_numpy()].sum()),
            int(times[unparseable.to_numpy()].sum()),
        )
    parsed, repaired, unparseable = _parse_text(values, read)
    return parsed, int(repaired.sum()), int(unparseable.sum())


def _parse_text(values: pd.Series, read: ReadOptions) -> tuple[pd.Series, pd.Series, pd.Series]:
    """``parse_numeric`` with its two counts as masks: needed repair, present but unparseable."""
    arrow = isinstance(values.dtype, pd.ArrowDtype | pd.StringDtype)
    text: pd.Series = values.astype(pd.StringDtype("pyarrow") if arrow else pd.StringDtype("python")).str.strip()
    present = (text.notna() & (text != "")).fillna(False).astype(bool)
    plain_text = text.where(text.str.fullmatch(INTEGER, na=False)) if read.decimal != "." else text
    plain = pd.to_numeric(plain_text.where(present), errors="coerce").astype(float)
    odd = present & plain.isna()
    repaired = pd.Series(np.nan, index=values.index)
    if odd.any():  # numbers written as text ('$12', '1,234.50'): few, parsed one by one
        converted = text[odd].astype(object).map(lambda value: _as_point_decimal(value, read))
        repaired[odd] = pd.to_numeric(converted, errors="coerce").astype(float)
    parsed = plain.fillna(repaired)
    return parsed, plain.isna() & repaired.notna(), present & parsed.isna()


def distinct_codes(values: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Codes into the column's distinct values (-1 for missing) and those values: a categorical's own, else
    factorized."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), list(values.cat.categories)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, list(uniques)


def _recoded(values: pd.Series, codes: np.ndarray, mapped: list[Any]) -> pd.Series:
    """``values`` with distinct value i replaced by ``mapped[i]`` (missing stays missing): a categorical stays
    a categorical over the mapped values (equal ones merged, missing ones dropped), anything else is objects."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        lookup = np.empty(len(mapped) + 1, dtype=object)
        lookup[:] = [*mapped, np.nan]
        return pd.Series(lookup[codes], index=values.index)
    kept = list(dict.fromkeys(value for value in mapped if not _missing(value)))
    position = {value: number for number, value in enumerate(kept)}
    lookup = np.array([-1 if _missing(value) else position[value] for value in mapped] + [-1], dtype=np.int32)
    recoded = pd.Categorical.from_codes(lookup[codes], categories=kept)  # type: ignore[call-overload]
    return pd.Series(recoded, index=values.index)


def missing_as(values: pd.Series, label: str) -> pd.Series:
    """``values.fillna(label)``, for a categorical column too (its missing values become a category of their own)."""
    if isinstance(values.dtype, pd.CategoricalDtype) and label not in values.cat.categories:
        values = values.cat.add_categories([label])
    return values.fillna(label)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _trimmed(distinct: list[Any]) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Distinct values with their whitespace trimmed and a blank (or missing) one missing, and two masks: which
    were padded (and are not blank), which were blank."""
    stripped = [value.strip() if isinstance(value, str) else value for value in distinct]
    blank = np.array([isinstance(value, str) and value == "" for value in stripped], dtype=bool)
    padded = np.array([isinstance(value, str) and value != value.strip() for value in distinct], dtype=bool) & ~blank
    # One spelling of missing (NaN): the imputers treat None as a value, not as missing.
    trimmed = [
        np.nan if is_blank or _missing(value) else value for value, is_blank in zip(stripped, blank, strict=True)
    ]
    return trimmed, padded, blank


def _canonical_values(values: list[Any], categories: list[str]) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Distinct values in the spec's spelling of their category (any case), and two masks: which changed case, which
    are no category the spec knows (kept as they are); a missing value stays missing and is neither."""
    canonical, known = _canonical_categories(categories), set(categories)
    fixed = [value if _missing(value) else canonical.get(str(value).casefold(), value) for value in values]
    changed = np.array([not _missing(old) and new != old for new, old in zip(fixed, values, strict=True)], dtype=bool)
    unknown = np.array([not _missing(value) and value not in known for value in fixed], dtype=bool)
    return fixed, changed, unknown


def target_labels(spec: DatasetSpec) -> dict[str, int]:
    """Normalised spellings of the target's two labels → 1 (positive) / 0 (negative)."""
    return {
        normalise_label(spec.target.positive): 1,
        normalise_label(spec.target.negative): 0,
    }


def normalise_label(value: object) -> str:
    text = str(value).strip().casefold()
    # '1.0' and '1' are the same label when a numeric target went through a float column.
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def parse_target(values: pd.Series, spec: DatasetSpec) -> pd.Series:
    """Target as 1/0 whatever its spelling (' yes', 'YES', 1.0); unknown labels become missing.

    With ``others_are_positive`` every present label but the negative one is 1.
    """
    labels = target_labels(spec)
    if spec.target.others_are_positive:
        negative = normalise_label(spec.target.negative)
        return values.map(lambda v: float(normalise_label(v) != negative) if pd.notna(v) and str(v).strip() else np.nan)
    mapped = values.map(lambda v: labels.get(normalise_label(v)) if pd.notna(v) else np.nan)
    return mapped.astype(float)


def typed_view(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Numbers parsed and the target mapped to 1/0, nothing else touched.

    The quality gate validates this view: types and ranges can be checked, while raw defects
    (casing, duplicates, out-of-range values) stay visible for the report.
    """
    view = frame.copy()
    for column in spec.columns.numeric:
        if column in view:
            view[column] = parse_numeric(view[column], spec.read)[0]
    if spec.target.column in view:
        view[spec.target.column] = parse_target(view[spec.target.column], spec)
    return view


def _canonical_categories(categories: list[str]) -> dict[str, str]:
    return _canonical_lookup(tuple(categories))


@lru_cache(maxsize=256)
def _canonical_lookup(categories: tuple[str, ...]) -> dict[str, str]:
    return {category.strip().casefold(): category for category in categories}


def clean_frame(frame: pd.DataFrame, spec: DatasetSpec, require_target: bool = True) -> CleanData:
    """Trim, fix case, coerce types, turn invalid values into missing, dedupe; count everything.

    With ``require_target=False`` (scoring requests) the target column may be absent.
    """
    report = CleaningReport(rows_in=len(frame))
    cleaned = frame.copy()

    for column in cleaned.columns:
        original = cleaned[column]
        if isinstance(original.dtype, pd.ArrowDtype | pd.StringDtype):  # many distinct texts (ids): vectorised
            stripped = original.str.strip()
            emptied = (stripped == "").fillna(False).astype(bool)
            spaced = (original != stripped).fillna(False).astype(bool)
            report.count("whitespace_trimmed", column, (spaced & ~emptied).sum())
            report.count("blank_to_missing", column, emptied.sum())
            cleaned[column] = stripped.mask(emptied)
            continue
        if not (original.dtype == object or isinstance(original.dtype, pd.CategoricalDtype)):
            continue
        codes, distinct = distinct_codes(original)
        if original.dtype == object and not all(isinstance(value, str) for value in distinct):
            codes, distinct = np.arange(len(original)), list(original)  # mixed types: 1, 1.0 and True share a code
        times = np.bincount(codes[codes >= 0], minlength=len(distinct))
        trimmed, padded, blank = _trimmed(distinct)
        report.count("whitespace_trimmed", column, times[padded].sum())
        report.count("blank_to_missing", column, times[blank].sum())
        cleaned[column] = _recoded(original, codes, trimmed)

    for column, rule in spec.columns.numeric.items():
        if column not in cleaned:
            continue
        parsed, needed_repair, unparseable = parse_numeric(cleaned[column], spec.read)
        report.count("number_text_repaired", column, needed_repair)
        report.count("unparseable_to_missing", column, unparseable)
        invalid = pd.Series(False, index=parsed.index)
        if rule.min is not None:
            invalid |= parsed < rule.min
        if rule.max is not None:
            invalid |= parsed > rule.max
        if rule.integer:
            invalid |= parsed.notna() & (parsed % 1 != 0)
        report.count("out_of_range_to_missing", column, invalid.sum())
        cleaned[column] = parsed.mask(invalid, np.nan)

    for column, categories in spec.columns.categorical.items():
        if column not in cleaned:
            continue
        codes, distinct = distinct_codes(cleaned[column])
        times = np.bincount(codes[codes >= 0], minlength=len(distinct))
        fixed, changed, unknown = _canonical_values(distinct, categories)
        report.count("case_fixed", column, times[changed].sum())
        report.count("unknown_category_kept", column, times[unknown].sum())
        cleaned[column] = _recoded(cleaned[column], codes, fixed)

    target = spec.target.column
    if target in cleaned:
        if spec.target.kind_column:
            cleaned[spec.target.kind_column] = cleaned[target]
        labels = parse_target(cleaned[target], spec)
        missing_target = labels.isna()
        report.drop(f"missing or unknown target ({target})", missing_target.sum())
        cleaned[target] = labels
        cleaned = cleaned.loc[~missing_target]
        cleaned[target] = cleaned[target].astype(int)
    elif require_target:
        raise KeyError(f"target column '{target}' is missing")

    id_column = spec.id_column
    if id_column and id_column in cleaned:
        duplicated = cleaned[id_column].notna() & cleaned.duplicated(subset=[id_column], keep="last")
        report.drop(f"duplicate {id_column} (later row kept)", duplicated.sum())
        cleaned = cleaned.loc[~duplicated]

    cleaned = cleaned.reset_index(drop=True)
    report.rows_out = len(cleaned)
    return CleanData(frame=cleaned, report=report)


@dataclass(frozen=True)
class CleanColumns:
    """A checked batch, cleaned: the numbers as float arrays (NaN for missing) and each category column as codes
    into its distinct cleaned values (-1 for missing), so encoding works per distinct value, not per row."""

    numbers: dict[str, np.ndarray]
    categories: dict[str, tuple[np.ndarray, list[Any]]]
    report: CleaningReport
    rows: int

    def column(self, name: str) -> np.ndarray:
        """One cleaned column as an array (a category column as objects, NaN for missing)."""
        if name in self.numbers:
            return self.numbers[name]
        codes, distinct = self.categories[name]
        values: np.ndarray = np.array([*distinct, np.nan], dtype=object)[codes]  # code -1 (missing) takes the last
        return values

    def equals(self, name: str, value: Any) -> np.ndarray:
        """``column(name) == value`` for a category column, compared once per distinct value."""
        codes, distinct = self.categories[name]
        same: np.ndarray = np.array([*(known == value for known in distinct), False])[codes]
        return same

    def frame(self, columns: list[str]) -> pd.DataFrame:
        """The cleaned batch as ``clean_frame`` gives it."""
        return pd.DataFrame({name: self.column(name) for name in columns})


def clean_checked_columns(batch: Batch, spec: DatasetSpec) -> CleanColumns:
    """``clean_frame`` for a service batch the request schema passed (``core.batch``): numbers are already numbers
    (in range, whole where integer) and categories are text or null, so only text is trimmed, blanks made
    missing and spellings made canonical, once per distinct value instead of once per row. Equal to
    ``clean_frame`` on such batches, report included (tests hold it so)."""
    report = CleaningReport(rows_in=batch.rows, rows_out=batch.rows)
    categories: dict[str, tuple[np.ndarray, list[Any]]] = {}
    for column, categories_known in spec.columns.categorical.items():
        codes, distinct = batch.categories[column]
        times = np.bincount(codes[codes >= 0], minlength=len(distinct))
        trimmed, padded, blank = _trimmed(distinct)
        fixed, changed, unknown = _canonical_values(trimmed, categories_known)
        for kind, mask in (
            ("whitespace_trimmed", padded),
            ("blank_to_missing", blank),
            ("case_fixed", changed),
            ("unknown_category_kept", unknown),
        ):
            report.count(kind, column, times[mask].sum())
        categories[column] = (codes, fixed)
    return CleanColumns(numbers=dict(batch.numbers), categories=categories, report=report, rows=batch.rows)


def clean_record(record: Mapping[str, object], spec: DatasetSpec) -> dict[str, object]:
    """One request cleaned exactly as ``clean_frame`` cleans a row, without building a DataFrame.

    The service calls this per request (a one-row DataFrame costs milliseconds); tests hold it
    equal to ``clean_frame`` on every row of a defect-laden batch.
    """
    cleaned: dict[str, object] = {}
    for column, value in record.items():
        if isinstance(value, str):
            value = value.strip() or np.nan
        elif value is None:
            value = np.nan
        cleaned[column] = value
    for column, rule in spec.columns.numeric.items():
        if column in cleaned:
            number = _parse_number(cleaned[column], spec.read)
            invalid = (
                (rule.min is not None and number < rule.min)
                or (rule.max is not None and number > rule.max)
                or (rule.integer and number % 1 != 0)
            )
            cleaned[column] = np.nan if invalid else number
    for column, categories in spec.columns.categorical.items():
        value = cleaned.get(column)
        if isinstance(value, str):
            cleaned[column] = _canonical_categories(categories).get(value.casefold(), value)
    return cleaned


def _parse_number(value: object, read: ReadOptions = DEFAULT_READ) -> float:
    """``parse_numeric`` for one value."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    if not isinstance(value, str):
        return np.nan
    if read.decimal == "." or INTEGER.fullmatch(value.strip()):
        plain = pd.to_numeric(value, errors="coerce")
        if not pd.isna(plain):
            return float(plain)
    converted = _as_point_decimal(value, read)
    return float(converted) if converted is not None else np.nan
