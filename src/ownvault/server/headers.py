"""Header values built from stored names, which may hold any character but NUL and ``/``
(a CR, an LF, a quote, a non-Latin letter): they never reach a header raw.

``Content-Disposition`` follows RFC 6266 with RFC 8187 (ex-5987) ``filename*``: a
``filename="…"`` fallback of printable ASCII only (every other character, ``"`` and ``\\``
become ``_``) and, whenever that fallback differs from the name, ``filename*=UTF-8''…``
with every byte but ``A-Z a-z 0-9 - . _ ~`` percent-encoded (a subset of RFC 8187's
``attr-char``), so the browser saves the exact name.
"""

from __future__ import annotations

import urllib.parse

__all__ = ["content_disposition"]


def content_disposition(filename: str, kind: str = "attachment") -> str:
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    out = f'{kind}; filename="{fallback}"'
    if fallback != filename:
        out += "; filename*=UTF-8''" + urllib.parse.quote(filename, safe="")
    return out
