"""Characters that reorder or hide text are shown, never obeyed: one response post-processor for every page.

Names, labels, annotations, messages and anything else that comes from Argo CD may hold bidi controls
(U+202E RIGHT-TO-LEFT OVERRIDE makes `team=evil‮dorp` read `team=evilprod`), zero-width characters and
other invisible format characters. Autoescaping makes them harmless to the markup but still lets them
reorder or hide what a person reads.

Why a response post-processor rather than a template filter: a filter has to be remembered in every
template (and every new one), while this sees every HTML page and HTMX fragment as sent. It is cheap when
there is nothing to do (one regular-expression search over the page), and when there is, an HTML tokenizer
tells each character's place, because the right treatment depends on it:

- in text: `<span class="hidden-char" title="U+202E RIGHT-TO-LEFT OVERRIDE">⟪U+202E⟫</span>`;
- in text that cannot hold markup (`<option>`, `<title>`): the plain `⟪U+202E⟫`;
- in attributes a person reads (title, placeholder, aria-label, alt, label): the plain `⟪U+202E⟫`;
- in what a form sends back (a `<textarea>`, an `<input>`'s value): left as it is, so a YAML editor saves
  the real characters and nothing changes unasked, with a visible note after the field naming them;
- in scripts, styles, comments, URLs and other attributes: left alone (never displayed as text).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from html import escape
from html.parser import HTMLParser

from django.http import HttpRequest, HttpResponse

# Invisible letters used to spoof names although they are not format characters.
_FILLERS = "\u115f\u1160\u3164\uffa0"
_NO_MARKUP = {"option", "title"}
_KEEP = {"script", "style", "textarea"}
_SHOWN_ATTRS = {"title", "placeholder", "aria-label", "alt", "label", "aria-description"}


@functools.cache
def _pattern() -> re.Pattern[str]:
    """Format (Cf), control (Cc but tab, newline, CR), line/paragraph separators and the fillers.

    Read from Python's Unicode database, as ranges (a class of single characters searches ten times slower);
    every such character lies in planes 0-2 or in plane 14 (tags), so only those are scanned.
    """
    ranges: list[list[int]] = []
    for code in [*range(0x30000), *range(0xE0000, 0xE1000)]:
        category = unicodedata.category(chr(code))
        if category in ("Cf", "Zl", "Zp") or (category == "Cc" and code not in (0x09, 0x0A, 0x0D)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    spans = "".join(re.escape(chr(a)) + ("" if a == b else "-" + re.escape(chr(b))) for a, b in ranges)
    return re.compile(f"[{spans}{_FILLERS}]")


def describe(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, 'CONTROL CHARACTER')}"


def _plain(char: str) -> str:
    return f"⟪U+{ord(char):04X}⟫"


def _marked(char: str) -> str:
    return f'<span class="hidden-char" title="{describe(char)}">{_plain(char)}</span>'


def _note(found: set[str]) -> str:
    names = ", ".join(escape(describe(c)) for c in sorted(found))
    return (
        f'<small class="hidden-char-note" role="note">This field holds hidden characters ({names}); '
        "they are kept exactly as they are when you save.</small>"
    )


def reveal_plain(text: str) -> str:
    """Text with every hidden character spelled out as ⟪U+XXXX⟫, for text a page inserts itself (log lines)."""
    return _pattern().sub(lambda m: _plain(m.group()), text)


class _Revealer(HTMLParser):
    """Collects (start, end, replacement) edits over the raw page; everything else stays byte for byte."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=False)
        self.html = html
        self.lines = [0] + [m.end() for m in re.finditer("\n", html)]
        self.edits: list[tuple[int, int, str]] = []
        self.open: list[str] = []
        self.kept: set[str] = set()  # hidden characters inside the open <textarea>

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.lines[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, attrs)
        if tag in _KEEP or tag in _NO_MARKUP:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.open.pop()
        if tag == "textarea" and self.kept:
            end = self.html.find(">", self._offset()) + 1
            self.edits.append((end, end, _note(self.kept)))
            self.kept = set()

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text() or ""
        pattern = _pattern()
        if not pattern.search(raw):
            return
        start = self._offset()
        value_kept = {c for name, v in attrs if name == "value" and v for c in pattern.findall(v)}
        shown = [(name, v) for name, v in attrs if name in _SHOWN_ATTRS and v and pattern.search(v)]
        if shown:
            rebuilt = "".join(
                f" {name}" if v is None else f' {name}="{escape(_reveal_attr(name, v), quote=True)}"'
                for name, v in attrs
            )
            closing = "/>" if raw.endswith("/>") else ">"
            self.edits.append((start, start + len(raw), f"<{tag}{rebuilt}{closing}"))
        hidden = dict(attrs).get("type") == "hidden"
        if value_kept and tag == "input" and not hidden:
            end = start + len(raw)
            self.edits.append((end, end, _note(value_kept)))

    def handle_data(self, data: str) -> None:
        pattern = _pattern()
        if not pattern.search(data):
            return
        where = self.open[-1] if self.open else ""
        if where in _KEEP:
            if where == "textarea":
                self.kept.update(pattern.findall(data))
            return
        shown: Callable[[str], str] = _plain if where in _NO_MARKUP else _marked
        start = self._offset()
        self.edits.append((start, start + len(data), pattern.sub(lambda m: shown(m.group()), data)))


def _reveal_attr(name: str, value: str) -> str:
    return _pattern().sub(lambda m: _plain(m.group()), value)


def reveal_html(html: str) -> str:
    """The page with every hidden character made visible where a person reads it (see the module's doc)."""
    if not _pattern().search(html):
        return html
    parser = _Revealer(html)
    parser.feed(html)
    parser.close()
    out, last = [], 0
    for start, end, text in sorted(parser.edits, key=lambda e: (e[0], e[1])):
        out += [html[last:start], text]
        last = end
    out.append(html[last:])
    return "".join(out)


class RevealHiddenCharactersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        _pattern()  # built once per process, not on the first page

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        kind = response.get("Content-Type", "")
        if response.streaming or not kind.startswith("text/html") or response.has_header("Content-Encoding"):
            return response
        charset = response.charset or "utf-8"
        html = response.content.decode(charset, "replace")
        revealed = reveal_html(html)
        if revealed is not html:
            response.content = revealed.encode(charset)
            if response.has_header("Content-Length"):
                response["Content-Length"] = str(len(response.content))
        return response
