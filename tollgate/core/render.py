"""Tables and pages for people: markdown tables and self-contained HTML reports (figures inlined).

Text from data (ids, categories, column names, file names) and from specs reaches analysts' browsers
through these pages, the markdown files beside them and Prefect's artifacts, so none of it may be
markup: ``markdown_safe`` turns every ``<`` of a markdown document into ``&lt;`` (Tollgate writes no raw
HTML in markdown), ``html_report`` renders markdown with raw HTML shown as text, and ``defuse_markup``
keeps tags out of what Great Expectations renders into its Data Docs.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import markdown
import pandas as pd
from markdown.extensions import Extension

LOOKALIKES = str.maketrans({"<": "‹", ">": "›"})


def markdown_safe(text: str) -> str:
    """A markdown document in which no raw HTML can open: ``<`` becomes ``&lt;`` (shown as ``<``)."""
    return text.replace("<", "&lt;")


def defuse_markup(value: str) -> str:
    """``value`` with ``<`` and ``>`` as the lookalikes ‹ ›: for text a third party renders without
    escaping it (Great Expectations' Data Docs), which must not change what an expectation sees
    (no spec category, id or column name holds angle brackets; the value stays as long)."""
    return value.translate(LOOKALIKES)


class _RawHtmlAsText(Extension):  # type: ignore[misc]  # markdown is untyped
    """Python-Markdown passes raw HTML through; with this, a tag in the text is shown as text."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 - the Extension API's name
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")


WORDS = {"cv": "CV", "oof": "OOF", "roc": "ROC", "pr": "PR", "auc": "AUC", "test": "holdout", "std": "±"}
MONEY_WORDS = ("cost", "value")


def readable_header(name: str) -> str:
    """``cv_roc_auc`` → ``CV ROC AUC``, ``oof_net_value`` → ``OOF net value``: a column name for people."""
    words = [WORDS.get(word, word) for word in name.split("_")]
    text = " ".join(words).replace("ROC AUC", "ROC-AUC").replace("PR AUC", "PR-AUC")
    return text[:1].upper() + text[1:]


def readable_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for a table people read (a Prefect table artifact): readable headers, money as ``$442,520``."""
    return [
        {
            readable_header(name): _dollars(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and name.endswith(MONEY_WORDS)
            else value
            for name, value in row.items()
        }
        for row in rows
    ]


def _dollars(value: float) -> str:
    return f"${value:,.0f}" if abs(value) >= 1000 else f"${value:,.2f}"


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A markdown table; a cell's ``|`` and line breaks are escaped so a value cannot break the table."""
    header = "| " + " | ".join(_cell(c) for c in columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join(_cell(r.get(c)) for c in columns) + " |\n" for r in rows)
    return header + body


def _cell(value: Any) -> str:
    return "" if value is None else " ".join(str(value).splitlines()).replace("|", "\\|")


def html_report(title: str, summary_markdown: str, tables: dict[str, pd.DataFrame], figures: dict[str, Path]) -> str:
    sections = [markdown.markdown(markdown_safe(summary_markdown), extensions=["tables", _RawHtmlAsText()])]
    for heading, table in tables.items():
        sections.append(f"<h2>{html.escape(heading)}</h2>" + table.to_html(index=False, border=0, classes="table"))
    for heading, path in figures.items():
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        sections.append(
            f"<h2>{html.escape(heading)}</h2><img alt='{html.escape(heading)}' src='data:image/png;base64,{encoded}'>"
        )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1250px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px}"
        "th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}h2{margin-top:1.6em}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>"
    )
