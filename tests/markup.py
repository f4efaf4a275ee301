"""What a browser would run in a page: for the tests that check nothing from data becomes markup."""

from __future__ import annotations

from html.parser import HTMLParser


class _Markup(HTMLParser):
    """Collects what would run: an attribute or a script whose text calls ``alert(``."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        for name, value in attrs:
            if "alert(" in (value or "") or "alert(" in name:
                self.found.append(f"<{tag} {name}={value!r}>")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and "alert(" in data:
            self.found.append(f"<script>{data[:60]}")


def live_markup(html: str) -> list[str]:
    parser = _Markup()
    parser.feed(html)
    return parser.found
