"""Pages for people: data and spec text never becomes markup, tables survive any value."""

from __future__ import annotations

from tests.markup import live_markup
from tollgate.core.render import defuse_markup, html_report, markdown_safe, markdown_table, readable_rows


def test_html_report_shows_raw_html_in_its_markdown_as_text():
    """Check a spec name or value carrying a tag is shown, not run, in report.html and drift.html."""
    page = html_report("<b>t</b>", "# churn <img src=x onerror=alert(1)>\n\n<script>alert(2)</script> p < 0.05", {}, {})
    assert not live_markup(page)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "p &lt; 0.05" in page


def test_markdown_safe_leaves_no_tag_to_open():
    """Check every ``<`` becomes an entity, so a renderer that passes raw HTML shows the text."""
    assert markdown_safe("a <img src=x> b") == "a &lt;img src=x> b"


def test_a_cell_cannot_break_its_table():
    """Check a ``|`` or a line break inside a value stays inside its cell."""
    table = markdown_table([{"a": "x|y", "b": "one\ntwo"}], ["a", "b"])
    assert table.splitlines()[2] == "| x\\|y | one two |"


def test_defused_values_keep_their_length_and_lose_their_tags():
    """Check the lookalikes Data Docs get keep a value's length and carry no angle bracket."""
    value = "<script>alert(2)</script>"
    assert len(defuse_markup(value)) == len(value) and "<" not in defuse_markup(value)


def test_markdown_tables_become_html_tables():
    """Check a markdown table in a report's summary (drift.md's, the policy table) is an HTML table in the
    page, not raw `| … |` text."""
    page = html_report("t", markdown_table([{"input": "tenure", "psi": 0.31}], ["input", "psi"]), {}, {})
    assert "<table>" in page and "<td>tenure</td>" in page and "| tenure |" not in page


def test_artifact_tables_have_readable_headers_and_dollars():
    """Check the leaderboard artifact's headers read as words and money as dollars (it showed `oof_net_value`
    and `592000`, and four decimals)."""
    rows = readable_rows([{"cv_roc_auc": 0.81, "oof_net_value": 442520.0, "expected_value": 577.0512, "rank": 1}])
    assert rows == [{"CV ROC-AUC": 0.81, "OOF net value": "$442,520", "Expected value": "$577.05", "Rank": 1}]
