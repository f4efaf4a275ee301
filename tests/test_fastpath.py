"""The single-record fast path scores exactly like the sklearn Pipeline."""

import numpy as np
import pytest

from tollgate.core.batch import batch_from_records
from tollgate.core.clean import clean_checked_columns, clean_frame
from tollgate.core.fastpath import FastScorer
from tollgate.core.features import build_pipeline, features_and_target
from tollgate.core.schema import request_records
from tollgate.core.split import split_rows
from tollgate.core.tournament import make_estimator


def _fit(spec, batch, estimator):
    frame = clean_frame(batch, spec).frame
    split = split_rows(frame, spec, None)
    candidate = next(c for c in spec.tournament.candidates if c.estimator == estimator)
    features, target = features_and_target(split.train, spec)
    pipeline = build_pipeline(spec, make_estimator(candidate, spec.split.seed)).fit(features, target)
    return pipeline, features_and_target(split.holdout, spec)[0]


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest", "lightgbm", "hist_gradient_boosting"])
def test_fast_path_equals_pipeline_on_the_whole_holdout(churn_spec, churn_batch, estimator):
    """Check, for every model type that can win, fast-path probabilities = Pipeline's to 1e-9."""
    pipeline, holdout = _fit(churn_spec, churn_batch, estimator)
    scorer = FastScorer.compile(pipeline)
    fast = np.array([scorer.predict_proba(record) for record in holdout.to_dict(orient="records")])
    np.testing.assert_allclose(fast, pipeline.predict_proba(holdout)[:, 1], rtol=0, atol=1e-9)


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest", "lightgbm", "hist_gradient_boosting"])
def test_fast_path_with_the_anomaly_step(security_spec, security_batch, estimator):
    """Check the security pipeline (IsolationForest score appended, compiled too) on its whole holdout."""
    pipeline, holdout = _fit(security_spec, security_batch, estimator)
    scorer = FastScorer.compile(pipeline)
    assert scorer.anomaly is not None
    encoded = np.vstack([scorer.encode(record) for record in holdout.to_dict(orient="records")])
    np.testing.assert_allclose(encoded, pipeline[:-1].transform(holdout), rtol=0, atol=1e-12)
    fast = np.array([scorer.predict_proba(record) for record in holdout.to_dict(orient="records")])
    np.testing.assert_allclose(fast, pipeline.predict_proba(holdout)[:, 1], rtol=0, atol=1e-9)


@pytest.mark.parametrize("estimator", ["random_forest", "hist_gradient_boosting"])
def test_tree_ensembles_are_compiled(churn_spec, churn_batch, estimator):
    """Check forests and boosted trees are scored from compiled node arrays, not tree by tree."""
    pipeline, _ = _fit(churn_spec, churn_batch, estimator)
    assert FastScorer.compile(pipeline).trees is not None


def test_unknown_and_missing_values(churn_spec, churn_batch):
    """Check that unseen categories and missing values score as the Pipeline scores them."""
    pipeline, holdout = _fit(churn_spec, churn_batch, "lightgbm")
    scorer = FastScorer.compile(pipeline)
    odd = holdout.head(5).assign(contract="Ten year", monthly_charges=np.nan, payment_method=np.nan)
    fast = [scorer.predict_proba(record) for record in odd.to_dict(orient="records")]
    np.testing.assert_allclose(fast, pipeline.predict_proba(odd)[:, 1], rtol=0, atol=1e-9)


def _batch_of(frame, spec):
    """A holdout frame as the service receives and cleans it: request records, checked, cleaned by columns."""
    return clean_checked_columns(batch_from_records(request_records(frame, spec), spec), spec)


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest", "lightgbm", "hist_gradient_boosting"])
def test_the_batch_path_equals_the_pipeline_on_the_whole_holdout(churn_spec, churn_batch, estimator):
    """Check /predict_batch's column-wise encoding is the ColumnTransformer's output and its probabilities the
    Pipeline's, with unknown categories and missing values in the batch."""
    pipeline, holdout = _fit(churn_spec, churn_batch, estimator)
    holdout = holdout.copy()
    holdout.loc[holdout.index[:3], "contract"] = "Ten year"
    holdout.loc[holdout.index[3:6], ["monthly_charges", "payment_method"]] = np.nan
    scorer = FastScorer.compile(pipeline)
    cleaned = _batch_of(holdout, churn_spec)
    np.testing.assert_allclose(scorer.encode_many(cleaned), pipeline[:-1].transform(holdout), rtol=0, atol=1e-12)
    expected = pipeline.predict_proba(holdout)[:, 1]
    np.testing.assert_allclose(scorer.predict_proba_many(cleaned), expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("estimator", ["logistic_regression", "lightgbm"])
def test_the_batch_path_with_the_anomaly_step(security_spec, security_batch, estimator):
    """Check the security batch path (derived counts and buckets, the IsolationForest score) against the Pipeline."""
    pipeline, holdout = _fit(security_spec, security_batch, estimator)
    scorer = FastScorer.compile(pipeline)
    probabilities = scorer.predict_proba_many(_batch_of(holdout, security_spec))
    np.testing.assert_allclose(probabilities, pipeline.predict_proba(holdout)[:, 1], rtol=0, atol=1e-9)
