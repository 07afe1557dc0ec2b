"""The only ways untrusted text (anything read from a report artifact or from the data: param keys and values,
metric, class, feature and group names, a failing command's output) reaches a comment: `code` for a span, `pre` for
a block. Inside them every character but letters, digits, space and `.,-` (and the dot of `www.`, which GitHub
links anywhere) becomes a numeric HTML entity and every control or odd space a plain space, and GitHub renders no
markdown, HTML, link, image, @mention or #ref inside <code> and <pre>: so no text can close its span, break a
table, link, mention or impersonate the report."""

from __future__ import annotations

import string
import unicodedata

from mltemplate.report.schema import MAX_TAIL, MAX_TEXT

SAFE = frozenset(string.ascii_letters + string.digits + " .,-")


def _entities(text: str, limit: int) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    out = []
    for i, char in enumerate(text):
        if char in SAFE and not (char == "." and text[max(0, i - 3) : i].lower() == "www"):
            out.append(char)
        elif char != "\n" and unicodedata.category(char)[0] in "CZ":  # controls, bidi overrides, odd spaces
            out.append(" ")
        else:
            out.append(f"&#{ord(char)};")
    return "".join(out)


def code(text: str) -> str:
    """Untrusted text inline, on one line."""
    return f"<code>{_entities(text, MAX_TEXT).replace('&#10;', ' ')}</code>"


def pre(text: str) -> str:
    """Untrusted text as a block, its lines kept."""
    return "<pre>" + _entities(text, MAX_TAIL).replace("&#10;", "\n") + "</pre>"
