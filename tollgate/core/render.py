"""Tables and pages for people: markdown tables and self-contained HTML reports (figures inlined)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import markdown
import pandas as pd


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in columns) + " |\n" for r in rows)
    return header + body


def html_report(title: str, summary_markdown: str, tables: dict[str, pd.DataFrame], figures: dict[str, Path]) -> str:
    sections = [markdown.markdown(summary_markdown)]
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
