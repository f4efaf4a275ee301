"""The other baseline: a minimal BentoML 1.4 service around the same stored Pipeline, a pandas frame per
request, BentoML's defaults otherwise (benchmarks/compare_serving.py starts it with 2 workers)."""

from __future__ import annotations

import os
from typing import Any

import bentoml
import pandas as pd

from tollgate.store.models import load_packaged_model

MODEL = load_packaged_model(os.environ["BASELINE_MODEL_TAG"])
COLUMNS = MODEL.spec.input_columns


def answers(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    probabilities = MODEL.pipeline.predict_proba(pd.DataFrame(records, columns=COLUMNS))[:, 1]
    return [{"probability": float(p), "prediction": bool(p >= MODEL.threshold)} for p in probabilities]


@bentoml.service(workers=2)
class Plain:
    @bentoml.api(route="/predict")
    def predict(self, record: dict[str, Any], /) -> dict[str, Any]:
        return answers([record])[0]

    @bentoml.api(route="/predict_batch")
    def predict_batch(self, records: list[dict[str, Any]], /) -> list[dict[str, Any]]:
        return answers(records)
