"""Great Expectations' Data Docs that open with no network and say the gate's verdict.

GE marks a validation "Failed" when any expectation fails, warnings included, so a batch that passed the
gate with warnings showed a red cross; ``mark_verdicts`` puts the gate's own verdict in its place on the
validation page and in the index ("Passed with 14 warnings, repaired by cleaning"), GE's counts unchanged.

GE 1.x writes pages that load jQuery, Bootstrap, bootstrap-table (which builds the index's list of
validations), a date picker and Font Awesome from five CDNs; behind a proxy or offline the index lists no
validation at all. ``make_offline`` copies the same versions (``data_docs_static/``, taken unchanged from the
npm registry, licences in ``LICENSES.txt``) into ``static/vendor`` and points every page at them. What no
page here uses is left out: a dark theme and the chart libraries (vega), the latter kept as they were on a
page that draws a chart.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

from tollgate.core.quality import BatchVerdict
from tollgate.core.render import defuse_markup

STATIC = Path(__file__).with_name("data_docs_static")

VENDORED = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "js/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "js/popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "js/bootstrap.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "css/bootstrap.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "js/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "css/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "js/bootstrap-table-filter-control.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "css/bootstrap-table-filter-control.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "css/bootstrap-table-filter-control.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "js/bootstrap-datepicker.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "css/bootstrap-datepicker.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "css/all.min.css",
}
DARK_THEME = "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css"
CHARTS = (
    "https://cdn.jsdelivr.net/npm/vega@5",
    "https://cdn.jsdelivr.net/npm/vega-lite@5",
    "https://cdn.jsdelivr.net/npm/vega-embed@6",
)
LOGO = re.compile(r'"https://great-expectations-web-assets\.s3[^"]*/(logo-long\.png)\?[^"]*"')
LOADED = re.compile(r'<(script|link)\b[^>]*?\b(?:src|href)="(https?://[^"]+)"[^>]*>(?:\s*</script>)?')
CHECKSUM = re.compile(r'\s(?:integrity|crossorigin)="[^"]*"')


def make_offline(docs_dir: Path) -> list[str]:
    """Serve every page's scripts and styles from ``docs_dir/static/vendor``; returns what is still loaded from
    the network (nothing, unless a page draws a chart)."""
    shutil.copytree(STATIC, docs_dir / "static" / "vendor", dirs_exist_ok=True)
    remote: list[str] = []
    for page in sorted(docs_dir.rglob("*.html")):
        static = Path(os.path.relpath(docs_dir / "static", page.parent)).as_posix()
        text = page.read_text(encoding="utf-8")
        charts = "vegaEmbed(" in text

        def local(match: re.Match[str], static: str = static, charts: bool = charts, page: Path = page) -> str:
            tag, url = match.group(1), match.group(2)
            if url in VENDORED:
                return CHECKSUM.sub("", match.group(0)).replace(url, f"{static}/vendor/{VENDORED[url]}")
            if url == DARK_THEME or (url in CHARTS and not charts):
                return ""
            remote.append(f"{page.relative_to(docs_dir)}: {tag} {url}")
            return match.group(0)

        offline = LOADED.sub(local, text)
        offline = LOGO.sub(lambda match, static=static: f'"{static}/images/{match.group(1)}"', offline)
        page.write_text(offline, encoding="utf-8")
    return remote


PAGE_STATUS = re.compile(
    r'(<span class="h6" >Status:</span>)\s*<i class="fas fa-[a-z-]+ text-(?:danger|success)"[^>]*></i>\s*'
    r"(?:Failed|Succeeded)"
)
INDEX_ROW = re.compile(
    r"'validation_success': '(?P<cell>[^']*)', (?P<between>'run_time': [^}]*?)'run_name': '(?P<run>[^']*)'"
)


def _icon(verdict: BatchVerdict) -> str:
    if verdict.passed:
        colour = "text-warning" if verdict.warnings else "text-success"
        return f'<i class="fas fa-check-circle {colour}" aria-hidden="true"></i>'
    return '<i class="fas fa-times text-danger" aria-hidden="true"></i>'


def mark_verdicts(docs_dir: Path, verdicts: Iterable[BatchVerdict]) -> int:
    """Replace GE's pass/fail of each batch's validation by the gate's verdict; returns the pages marked."""
    by_run = {defuse_markup(verdict.batch): verdict for verdict in verdicts}
    marked = 0
    for page in sorted((docs_dir / "validations").rglob("*.html")):
        verdict = by_run.get(unquote(page.relative_to(docs_dir / "validations").parts[1]))
        if verdict is None:
            continue
        text = page.read_text(encoding="utf-8")
        status = (
            f"{_icon(verdict)} <strong>{html.escape(verdict.words)}</strong> "
            "<small>(the Tollgate gate; GE counts a failed warning as a failed validation)</small>"
        )
        text, found = PAGE_STATUS.subn(lambda match, status=status: f"{match.group(1)} {status}", text)
        page.write_text(text, encoding="utf-8")
        marked += found

    index = docs_dir / "index.html"
    if index.is_file():

        def row(match: re.Match[str]) -> str:
            verdict = by_run.get(match.group("run"))
            if verdict is None:
                return match.group(0)
            cell = f"{_icon(verdict)} {html.escape(verdict.words)}".replace("'", "&#x27;")
            return f"'validation_success': '{cell}', {match.group('between')}'run_name': '{match.group('run')}'"

        index.write_text(INDEX_ROW.sub(row, index.read_text(encoding="utf-8")), encoding="utf-8")
    return marked
