"""When monitoring may ask for a retrain: a reason (drift, or a realised-value shortfall), no request within
the cooldown, and a labelled batch the champion has not trained on. Without the last two, injected drift
started a retrain on unchanged data, which was rejected, and would have started one every day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetrainRequest:
    """Whether to ask for a retrain, and why (or why not), in words for the report and the JSON line."""

    requested: bool
    reason: str


def retrain_request(
    reasons: list[str],
    now: datetime,
    last_requested_at: datetime | None,
    cooldown: timedelta,
    champion_input: str | None,
    champion_holdout: str | None,
    available_input: str | None,
    available_holdout: str | None,
) -> RetrainRequest:
    """The rule, in order: a reason; out of the cooldown; data (a retrain would read) that is not the
    champion's own input; with monthly batches, a month newer than the champion's holdout."""
    if not reasons:
        return RetrainRequest(False, "no reason to retrain: no drift and no shortfall")
    why = "; ".join(reasons)
    if last_requested_at is not None and now - last_requested_at < cooldown:
        until = (last_requested_at + cooldown).isoformat(timespec="minutes")
        return RetrainRequest(
            False,
            f"{why} — but a retrain was requested at {last_requested_at:%Y-%m-%d %H:%M} UTC: "
            f"cooling down until {until}",
        )
    if available_input is None:
        return RetrainRequest(False, f"{why} — but there is no labelled data to retrain on")
    if available_input == champion_input:
        return RetrainRequest(
            False, f"{why} — but the data a retrain would read is exactly the champion's own input: wait for new labels"
        )
    if available_holdout and champion_holdout and available_holdout <= champion_holdout:
        return RetrainRequest(
            False,
            f"{why} — but no labelled batch is newer than the champion's holdout month {champion_holdout}: "
            "wait for the next month's labels",
        )
    return RetrainRequest(True, why)
