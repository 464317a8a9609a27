"""Marks what the example browser's search found in a text, escaped like any other text."""

from __future__ import annotations

import re

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def highlight(text: object, query: object) -> object:
    """``text`` escaped, with each case-insensitive occurrence of ``query`` in ``<mark>``."""
    if not isinstance(text, str) or not isinstance(query, str) or not query:
        return text
    pieces: list[str] = []
    last = 0
    for found in re.finditer(re.escape(query), text, flags=re.IGNORECASE):
        pieces.append(conditional_escape(text[last : found.start()]))
        pieces.append(format_html("<mark>{}</mark>", found.group()))
        last = found.end()
    if not pieces:
        return text
    pieces.append(conditional_escape(text[last:]))
    return mark_safe("".join(pieces))  # noqa: S308 - every piece above is escaped
