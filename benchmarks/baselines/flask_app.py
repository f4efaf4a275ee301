"""The baseline a user would otherwise write: Flask + gunicorn around the same stored Pipeline, a pandas frame
per request (benchmarks/compare_serving.py starts it with 2 sync workers)."""

from __future__ import annotations

import os

import pandas as pd
from flask import Flask, jsonify, request

from tollgate.store.models import load_packaged_model

MODEL = load_packaged_model(os.environ["BASELINE_MODEL_TAG"])
COLUMNS = MODEL.spec.input_columns
app = Flask(__name__)


def answers(records: list[dict]) -> list[dict]:
    probabilities = MODEL.pipeline.predict_proba(pd.DataFrame(records, columns=COLUMNS))[:, 1]
    return [{"probability": float(p), "prediction": bool(p >= MODEL.threshold)} for p in probabilities]


@app.post("/predict")
def predict():
    return jsonify(answers([request.get_json()])[0])


@app.post("/predict_batch")
def predict_batch():
    return jsonify(answers(request.get_json()))
