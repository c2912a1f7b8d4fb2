"""User-given text (file names above all) made safe for Streamlit's Markdown: shown as typed.

Streamlit renders captions, warnings, metric labels and markdown as Markdown, so a file named
``![t](http://host/x.png) a.jpg`` would make the browser fetch that address. `plain` escapes
every ASCII punctuation character (CommonMark renders a backslash-escaped one literally).
"""

from __future__ import annotations

import string

_ESCAPES = str.maketrans({c: "\\" + c for c in string.punctuation})


def plain(text: object) -> str:
    """``text`` with Markdown and HTML syntax escaped, so it shows literally."""
    return str(text).translate(_ESCAPES).replace("\n", " ")
