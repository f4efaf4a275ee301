"""Spec-driven features inside the sklearn Pipeline, with readable output names."""

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier

from tollgate.core.clean import clean_frame
from tollgate.core.features import SpecFeatures, build_pipeline, feature_names


def test_derived_features(churn_spec):
    """Check charges per month, log charges, service count and tenure bucket on known values."""
    frame = pd.DataFrame(
        {
            "tenure_months": [0.0, 2.0, 30.0, np.nan],
            "total_charges": [np.nan, 100.0, 3000.0, 5.0],
            **{
                c: ["Yes", "No", "Yes", None]
                for c in [
                    "phone_service",
                    "multiple_lines",
                    "online_security",
                    "online_backup",
                    "device_protection",
                    "tech_support",
                    "streaming_tv",
                    "streaming_movies",
                ]
            },
        }
    )
    out = SpecFeatures(churn_spec.features).fit(frame).transform(frame)
    np.testing.assert_allclose(out["charges_per_tenure_month"], [np.nan, 50.0, 100.0, np.nan])
    np.testing.assert_allclose(out["log_total_charges"], np.log1p([np.nan, 100.0, 3000.0, 5.0]))
    assert out["service_count"].tolist() == [8, 0, 8, 0]
    assert out["tenure_bucket"].tolist()[:3] == ["0-2 months", "0-2 months", "24-47 months"]
    assert pd.isna(out["tenure_bucket"].iloc[3])


def test_security_features(security_spec):
    """Check failed-login ratio, bytes ratio and the off-hours flag."""
    frame = pd.DataFrame(
        {
            "failed_logins": [9, 0],
            "successful_logins": [1, 0],
            "bytes_out": [999, 0],
            "bytes_in": [0, 9],
            "unique_ports": [10, 1],
            "requests": [9, 1],
            "login_hour": [3, 12],
        }
    )
    out = SpecFeatures(security_spec.features).fit(frame).transform(frame)
    assert out["failed_login_ratio"].iloc[0] == 0.9 and np.isnan(out["failed_login_ratio"].iloc[1])
    assert out["bytes_out_in_ratio"].tolist() == [999.0, 0.0]
    assert out["off_hours"].tolist() == [1.0, 0.0]


def test_pipeline_names_and_unknown_categories(churn_batch, churn_spec):
    """Check readable feature names and that an unseen category scores without error."""
    frame = clean_frame(churn_batch, churn_spec).frame
    features, target = frame.drop(columns=["churn"]), frame["churn"]
    pipeline = build_pipeline(churn_spec, LGBMClassifier(n_estimators=20, verbose=-1)).fit(features, target)
    names = feature_names(pipeline)
    assert "contract_Month-to-month" in names and "tenure_bucket_0-2 months" in names
    assert "service_count" in names and len(names) == len(set(names))
    odd = features.head(2).assign(contract="Ten year", payment_method=np.nan)
    probabilities = pipeline.predict_proba(odd)[:, 1]
    assert np.all((probabilities > 0) & (probabilities < 1))
