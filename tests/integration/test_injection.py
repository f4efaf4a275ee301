"""Stored HTML injection: a batch carrying script and attribute payloads, run through the real flow.

Every page, markdown file and Prefect artifact the run produces is read the way a browser would read it
(markdown rendered by a renderer that passes raw HTML, as Prefect's UI and code hosts may): no payload
may come out as markup.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import markdown
import pandas as pd
import pytest

from flows.retrain import retrain
from tests.markup import live_markup

PAYLOADS = {
    "id": "<img src=x onerror=alert(1)>",
    "category": "<script>alert(2)</script>",
    "attribute": '" onmouseover="alert(3)',
    "single-quoted attribute": "' autofocus onfocus='alert(4)",
}
COLUMN_PAYLOAD = "<svg onload=alert(5)>"


def _poisoned(batches: Path, folder: Path) -> Path:
    """The session's churn months with every payload in ids, a category and a column name (a few rows)."""
    folder.mkdir(parents=True)
    for path in sorted(batches.glob("*.csv")):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        for row, payload in enumerate(PAYLOADS.values()):
            frame.loc[row, "customer_id"] = f"{payload} {path.stem}-{row}"
            frame.loc[len(PAYLOADS) + row, "payment_method"] = payload
        frame[COLUMN_PAYLOAD] = "1"
        frame.to_csv(folder / path.name, index=False)
    return folder


async def _artifacts_since(started: pd.Timestamp) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="churn")))
    return [artifact for artifact in artifacts if artifact.created >= started]


def test_payloads_in_values_and_column_names_never_reach_a_page_as_markup(monthly_batches, tmp_path, monkeypatch):
    """Check the run on a poisoned batch completes and no page, markdown file or Prefect artifact carries
    live markup, while the payloads are shown (escaped) where analysts look for them."""
    header = pd.read_csv(next((monthly_batches / "churn").glob("*.csv")), nrows=0).columns
    assert {"customer_id", "payment_method"} <= set(header)  # the raw names the payloads go into
    data = _poisoned(monthly_batches / "churn", tmp_path / "raw")
    artifacts = tmp_path / "artifacts"
    monkeypatch.setenv("TOLLGATE_ARTIFACTS_DIR", str(artifacts))
    started = pd.Timestamp.now(tz="UTC")
    summary = retrain(dataset="churn", data=str(data))
    assert summary["status"] == "completed", summary

    pages = [*artifacts.rglob("*.html")]
    documents = [*artifacts.rglob("*.md")]
    assert any("data_docs" in str(page) for page in pages) and len(documents) >= 3
    found = {str(page): live_markup(page.read_text(encoding="utf-8")) for page in pages}
    found |= {
        str(document): live_markup(markdown.markdown(document.read_text(encoding="utf-8"))) for document in documents
    }
    published = asyncio.run(_artifacts_since(started))
    assert published
    for artifact in published:
        text = artifact.data if isinstance(artifact.data, str) else repr(artifact.data)
        rendered = markdown.markdown(text) if artifact.type == "markdown" else text
        found[f"artifact {artifact.key}"] = live_markup(rendered) + (
            ["<"] if artifact.type == "table" and "<" in text else []
        )
        found[f"artifact {artifact.key} description"] = live_markup(markdown.markdown(artifact.description or ""))
    assert not {where: markup for where, markup in found.items() if markup}

    quality = (Path(summary["report"]).parent / "data_quality.md").read_text(encoding="utf-8")
    assert "&lt;script" in quality or "‹script›" in quality  # shown, as text
    docs = "".join(page.read_text(encoding="utf-8") for page in pages if "data_docs" in str(page))
    assert "‹script›alert(2)‹/script›" in docs


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path):
    yield
    shutil.rmtree(tmp_path / "artifacts", ignore_errors=True)
