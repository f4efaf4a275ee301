"""Ingest: read raw monthly batches (CSV or Parquet) as they are, rename columns, record lineage.

Values are read as text so that nothing is lost or silently re-typed before the quality gate and
cleaning have looked at them; the SHA-256 of the raw bytes is the lineage the registry keys on.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tollgate.config.settings import Settings
from tollgate.config.spec import DEFAULT_READ, DatasetSpec, ReadOptions
from tollgate.store.files import file_sha256

BATCH_COLUMN = "_batch"
"""Pipeline metadata column: the month (YYYY-MM) a row came from, or the file name."""

MONTH_FILE = re.compile(r"^(\d{4}-\d{2})\.(csv|parquet)$")
MONTH_FOLDER = re.compile(r"^\d{4}-\d{2}$")
READABLE_SUFFIXES = (".csv", ".parquet")


class IngestError(ValueError):
    """Raw input that cannot be read: a missing path, an unknown month, an unreadable file."""


@dataclass(frozen=True)
class BatchFile:
    path: str
    month: str | None
    rows: int
    sha256: str
    columns: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.month or Path(self.path).name


@dataclass(frozen=True)
class RawData:
    frame: pd.DataFrame
    files: list[BatchFile]
    holdout_month: str | None
    renamed: dict[str, str] = field(default_factory=dict)
    parse_reports: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # raw logs: what happened to every line, by month
    line_samples: dict[str, pd.DataFrame] = field(default_factory=dict)  # raw logs: lines for the expectations

    @property
    def rows(self) -> int:
        return len(self.frame)

    def batches(self, view: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
        """Each batch's rows with only the columns it really had (after renaming); one per month of raw logs.
        Taken from ``view`` when given: a frame of the same rows (the typed view the gate validates)."""
        frame = self.frame if view is None else view
        return {
            batch.label: frame.loc[
                self.frame[BATCH_COLUMN] == batch.label, [self.renamed.get(c, c) for c in batch.columns]
            ]
            for batch in self.files
            if batch.columns
        }

    @property
    def sha256(self) -> str:
        """One hash for the whole input: the hashes of its files, in order."""
        return combined_sha256((Path(batch.path).name, batch.sha256) for batch in self.files)


def combined_sha256(files: Iterable[tuple[str, str]]) -> str:
    """One hash for several files: their names and SHA-256s, in order (what the registry records)."""
    hasher = hashlib.sha256()
    for name, checksum in files:
        hasher.update(f"{name}:{checksum}\n".encode())
    return hasher.hexdigest()


def month_of(path: Path) -> str | None:
    match = MONTH_FILE.match(path.name)
    return match.group(1) if match else None


def plan_batches(source: Path, month: str | None, window: int) -> tuple[list[Path], str | None]:
    """Which files a run reads, and which month it holds out.

    A directory of ``YYYY-MM`` batches: month M (default: the latest) is the holdout and the
    ``window`` months before it train. A single file, or files without months: all of them, no
    holdout month (the split is then stratified).
    """
    if not source.exists():
        raise IngestError(f"data not found: {source}")
    if source.is_file():
        if month is not None:
            raise IngestError("--month needs a directory of YYYY-MM batches, not a single file")
        return [source], None
    files = sorted(p for p in source.iterdir() if p.suffix in READABLE_SUFFIXES and p.is_file())
    if not files:
        raise IngestError(f"no .csv or .parquet batches in {source}")
    monthly = {label: p for p in files if (label := month_of(p))}
    if len(monthly) != len(files):
        if month is not None:
            raise IngestError(f"--month needs every file in {source} named YYYY-MM.csv or .parquet")
        return files, None
    chosen = holdout_window(monthly, month, window, source, "batch")
    if chosen is None:
        raise IngestError(f"month {month or max(monthly)} has no earlier batches to train on in {source}")
    return [monthly[m] for m in chosen], chosen[-1]


def holdout_window(
    available: Mapping[str, object], month: str | None, window: int, source: Path, what: str
) -> list[str] | None:
    """The ``window`` months before the holdout month (default: the latest), then the holdout itself;
    None when no month precedes it."""
    months = sorted(available)
    holdout = month or months[-1]
    if holdout not in available:
        raise IngestError(f"no {what} for month {holdout} in {source}; available: {months[0]} … {months[-1]}")
    earlier = [m for m in months if m < holdout][-window:]
    return [*earlier, holdout] if earlier else None


LIKELY_SEPARATORS = (";", "\t", "|", ",")
TEXT_KEPT_AS_TEXT = 0.5
"""A text column with more distinct values than this share of its rows (identifiers, numbers written as text)
stays Arrow text; any other becomes a pandas categorical: codes into its distinct values."""


def read_table(path: Path, read: ReadOptions = DEFAULT_READ) -> pa.Table:
    """One batch as an Arrow table: a CSV's every field as text (or null: empty and the usual NA spellings), read
    with the spec's ``read:`` options on all cores; a Parquet file with the types it was written with. A file
    plainly written another way (one column whose header holds another separator, another encoding) is an
    ``IngestError`` saying which option to set, not 60 failed expectations."""
    try:
        if path.suffix == ".parquet":
            return pq.read_table(path)
        with path.open("rb") as handle:
            header = pacsv.read_csv(
                io.BytesIO(handle.readline()),
                read_options=pacsv.ReadOptions(encoding=read.encoding),
                parse_options=pacsv.ParseOptions(delimiter=read.separator, quote_char=read.quote),
            ).column_names
        if len(header) == 1:
            header_text = header[0]
            found = [mark for mark in LIKELY_SEPARATORS if mark != read.separator and header_text.count(mark) >= 2]
            if found:
                shown = "\\t" if found[0] == "\t" else found[0]
                raise IngestError(
                    f"{path} reads as one column with the separator {read.separator!r}, and its header holds "
                    f"{header_text.count(found[0])} {found[0]!r}: set the spec's read.separator to '{shown}'"
                    + (" (and read.decimal to ',' if numbers are written 1.234,5)" if found[0] == ";" else "")
                )
        names = unique_names(header)
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=read.encoding, block_size=1 << 24, column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=read.separator, quote_char=read.quote, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names}, strings_can_be_null=True
            ),
        )
    except UnicodeDecodeError as error:
        raise wrong_encoding(path, read, f"{error.reason} at byte {error.start}") from error
    except pa.ArrowInvalid as error:
        if "UTF8" in str(error) or "utf-8" in str(error).lower():
            raise wrong_encoding(path, read, str(error).splitlines()[0]) from error
        return _read_uneven(path, read, error)
    return table


def wrong_encoding(path: Path, read: ReadOptions, detail: str) -> IngestError:
    return IngestError(
        f"cannot read {path} as {read.encoding} ({detail}); set the spec's read.encoding (e.g. latin-1 or cp1252)"
    )


def unique_names(header: list[str]) -> list[str]:
    """Column names as pandas makes them: a name met again gets ``.1``, ``.2`` … (no column is lost to a
    duplicate header)."""
    seen: dict[str, int] = {}
    names = []
    for name in header:
        candidate = name
        while candidate in seen:
            seen[name] += 1
            candidate = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        seen[candidate] = 0
        names.append(candidate)
    return names


def _read_uneven(path: Path, read: ReadOptions, refused: Exception) -> pa.Table:
    """A CSV Arrow refuses (a row with fewer fields than the header, as exports cut short have), read by pandas'
    parser as before: short rows padded with missing values, a row with too many fields an ``IngestError`` naming
    its line."""
    print(f"ingest: {path.name}: {str(refused).splitlines()[0]}; reading it with pandas' parser")
    return _read_with_pandas(path, read)


def _read_with_pandas(path: Path, read: ReadOptions, rows: int | None = None) -> pa.Table:
    """The CSV (its first ``rows`` rows when given) read by pandas' parser, every field as text."""
    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=True,
            sep=read.separator,
            quotechar=read.quote,
            encoding=read.encoding,
            nrows=rows,
        )
    except UnicodeDecodeError as error:
        raise wrong_encoding(path, read, f"{error.reason} at byte {error.start}") from error
    except (ValueError, pd.errors.ParserError) as error:
        raise IngestError(f"cannot read {path}: {str(error).strip().splitlines()[0]}") from error
    schema = pa.schema([(str(name), pa.string()) for name in frame.columns])
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def encoded_table(table: pa.Table) -> pa.Table:
    """``table`` with every text column of few distinct values dictionary-encoded: codes into its distinct texts
    (identifiers and numbers written as text stay text). Done per batch, so a month's raw text is freed as soon as
    it is encoded."""
    columns = []
    for column in table.columns:
        if _is_text(column.type):
            distinct = pc.count_distinct(column, mode="all").as_py()
            if distinct <= max(1, TEXT_KEPT_AS_TEXT * len(column)):
                column = column.dictionary_encode()
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def combined_table(tables: list[pa.Table]) -> pa.Table:
    """Batches as one table: a column missing from a batch is null there, one encoded in a batch and text in
    another is text in all, and each encoded column's codes index one dictionary."""
    encoded: dict[str, set[bool]] = {}
    for table in tables:
        for field_ in table.schema:
            encoded.setdefault(field_.name, set()).add(pa.types.is_dictionary(field_.type))
    mixed = {name for name, kinds in encoded.items() if len(kinds) > 1}
    if mixed:
        tables = [
            pa.table(
                [
                    column.cast(column.type.value_type)
                    if name in mixed and pa.types.is_dictionary(column.type)
                    else column
                    for name, column in zip(table.column_names, table.columns, strict=True)
                ],
                names=table.column_names,
            )
            for table in tables
        ]
    return pa.concat_tables(tables, promote_options="permissive").unify_dictionaries()


def columnar_frame(table: pa.Table) -> pd.DataFrame:
    """A pandas frame over an Arrow table without a Python object per value: an encoded text column becomes a
    categorical (codes into its distinct texts), any other text column stays Arrow text, numbers stay numbers.
    Every value is kept as it was read."""
    columns: dict[str, pd.Series] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if _is_text(column.type):
            columns[name] = column.to_pandas(types_mapper=pd.ArrowDtype)
        else:  # numbers, and dictionary-encoded text as a categorical
            columns[name] = column.to_pandas()
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def read_batch(path: Path, read: ReadOptions = DEFAULT_READ, rows: int | None = None) -> pd.DataFrame:
    """One batch as a compact frame (see ``read_table`` and ``columnar_frame``); its first ``rows`` rows when
    given."""
    if rows is not None and path.suffix != ".parquet":  # a look at a file's head (drafting a spec): only the head
        return columnar_frame(encoded_table(_read_with_pandas(path, read, rows)))
    table = read_table(path, read)
    return columnar_frame(encoded_table(table if rows is None else table.slice(0, rows)))


def source_of(spec: DatasetSpec, settings: Settings, data: str | Path | None) -> Path:
    return Path(data) if data else spec.raw_path(settings)


def planned_files(
    spec: DatasetSpec,
    settings: Settings,
    data: str | Path | None = None,
    month: str | None = None,
    raw: str | Path | None = None,
) -> tuple[list[Path], str | None]:
    """Every file a run would read (batches, or raw log folders' files) and its holdout month."""
    if raw:
        months, holdout = plan_log_months(Path(raw), month, spec.split.train_window_months)
        return [path for folder in months.values() for path in sorted(folder.iterdir()) if path.is_file()], holdout
    return plan_batches(source_of(spec, settings, data), month, spec.split.train_window_months)


def plan_log_months(source: Path, month: str | None, window: int) -> tuple[dict[str, Path], str | None]:
    """Month folders of raw logs a run reads (``source`` is one month, or holds YYYY-MM folders)."""
    if not source.is_dir():
        raise IngestError(f"raw logs not found: {source} (a month folder, or a folder of YYYY-MM folders)")
    folders = {p.name: p for p in source.iterdir() if p.is_dir() and MONTH_FOLDER.match(p.name)}
    if not folders:
        return {month_of_folder(source): source}, None
    chosen = holdout_window(folders, month, window, source, "raw logs")
    if chosen is None:  # one month: a stratified split of its sessions
        single = month or max(folders)
        return {single: folders[single]}, None
    return {m: folders[m] for m in chosen}, chosen[-1]


def month_of_folder(folder: Path) -> str:
    return folder.name or "logs"


def read_raw_logs(
    spec: DatasetSpec, months: dict[str, Path]
) -> tuple[list[pd.DataFrame], list[BatchFile], dict[str, dict[str, Any]], dict[str, pd.DataFrame]]:
    """Sessionise each month's logs and attach its incident records; lineage per log file."""
    # Imported here: only raw logs need them, and polars (their engine) takes 0.07 s to import.
    from tollgate.rawlogs.parse import ParseReport, RawLogError, log_files
    from tollgate.rawlogs.sessions import attach_labels
    from tollgate.rawlogs.stream import sessionise

    if spec.raw_logs is None:
        raise IngestError(f"spec '{spec.name}' has no raw_logs section: it cannot read raw logs")
    raw_logs = spec.raw_logs
    frames: list[pd.DataFrame] = []
    files: list[BatchFile] = []
    reports: dict[str, dict[str, Any]] = {}
    samples: dict[str, pd.DataFrame] = {}
    for month, folder in months.items():
        try:
            paths = log_files(folder)

            def progress(report: ParseReport, month: str = month) -> None:
                print(f"  {month}: {report.lines:,} lines read, {report.parsed:,} events")

            sessions, report, sample = sessionise(
                paths, spec, month if MONTH_FOLDER.match(month) else None, progress=progress
            )
            labelled = attach_labels(sessions, folder / raw_logs.labels_file, spec)
        except RawLogError as error:
            raise IngestError(f"{folder}: {error}") from error
        print(
            f"ingest: {month}: {report.lines:,} lines → {report.parsed:,} events ({report.parse_rate:.2%} parsed, "
            f"{report.duplicates:,} duplicates dropped, unusable {dict(report.problems)}) → {len(labelled):,} sessions"
        )
        labelled[BATCH_COLUMN] = month
        frames.append(labelled)
        columns = tuple(c for c in labelled.columns if c != BATCH_COLUMN)
        for number, path in enumerate(paths):
            files.append(
                BatchFile(
                    str(path),
                    month,
                    report.lines if number == 0 else 0,
                    file_sha256(path),
                    columns if number == 0 else (),
                )
            )
        labels = folder / raw_logs.labels_file
        files.append(BatchFile(str(labels), month, 0, file_sha256(labels), ()))
        reports[month], samples[month] = report.as_dict(), sample
    return frames, files, reports, samples


def read_input(
    spec: DatasetSpec,
    settings: Settings,
    data: str | Path | None = None,
    month: str | None = None,
    raw: str | Path | None = None,
) -> RawData:
    """Read the batches a run needs (``data``, or the spec's raw folder), rename, hash every file.
    With ``raw``, build them from raw event logs instead (``spec.raw_logs``), one batch per month."""
    if raw:
        if spec.raw_logs is None:
            raise IngestError(f"--raw needs a raw_logs section in the '{spec.name}' spec")
        months, holdout_month = plan_log_months(Path(raw), month, spec.split.train_window_months)
        print(
            f"ingest: raw logs of {len(months)} month(s) from {raw}"
            + (f", holdout month {holdout_month}" if holdout_month else "")
        )
        frames, files, reports, samples = read_raw_logs(spec, months)
        return RawData(
            frame=pd.concat(frames, ignore_index=True),
            files=files,
            holdout_month=holdout_month,
            parse_reports=reports,
            line_samples=samples,
        )
    source = source_of(spec, settings, data)
    paths, holdout_month = plan_batches(source, month, spec.split.train_window_months)
    print(
        f"ingest: {len(paths)} batch file(s) from {source}"
        + (f", holdout month {holdout_month}" if holdout_month else "")
    )
    tables, files = [], []
    for path in paths:
        table = encoded_table(read_table(path, spec.read))
        info = BatchFile(str(path), month_of(path), table.num_rows, file_sha256(path), tuple(table.column_names))
        label = pa.DictionaryArray.from_arrays(pa.array(np.zeros(table.num_rows, np.int8)), pa.array([info.label]))
        tables.append(table.append_column(BATCH_COLUMN, label))
        files.append(info)
    # One table, then one frame: each encoded column's codes index one dictionary over every batch.
    table = combined_table(tables)
    renamed = {old: new for old, new in spec.rename.items() if old in table.column_names}
    table = table.rename_columns([renamed.get(name, name) for name in table.column_names])
    return RawData(frame=columnar_frame(table), files=files, holdout_month=holdout_month, renamed=renamed)
