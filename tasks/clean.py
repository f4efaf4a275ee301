"""The clean stage: the library's ``clean_frame`` on the run's batches, its counts in the log."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.run import MEASURED, TIMEOUTS
from tollgate.config.spec import DatasetSpec
from tollgate.core.clean import CleanData, clean_frame


@task(name="clean", cache_policy=NO_CACHE, timeout_seconds=TIMEOUTS["clean"], **MEASURED)
def clean(frame: pd.DataFrame, spec: DatasetSpec) -> CleanData:
    """Clean a monthly batch; every dropped row and repaired value is counted in the report."""
    result = clean_frame(frame, spec)
    report = result.report
    repairs = {kind: sum(columns.values()) for kind, columns in report.values_repaired.items()}
    print(
        f"cleaning: {report.rows_in:,} rows in, {report.rows_out:,} out; "
        f"dropped {dict(report.rows_dropped) or 'none'}; repaired {repairs or 'none'}"
    )
    return result
