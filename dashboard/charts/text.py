"""Text that goes into figures: escaping for plotly's HTML subset and number formatting.

Plotly renders hover labels, legend entries, titles and annotations as a subset of HTML
(``<b>``, ``<br>``, ``<a href>``, ``<span style>``…), and substitutes ``%{…}`` templates in
names, titles and hover templates. Every piece of user content (run names, checkpoint and
model ids, hyperparameter names) therefore goes through ``escape_text`` before it enters a
figure. Plotly's renderer decodes only a few named entities (``&lt; &gt; &amp;`` but not
``&quot;``) plus numeric ones, so quotes and braces are written as numeric entities; braces
are escaped so that a name like ``%{x}`` is shown, not evaluated.
"""

from __future__ import annotations

import math

_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&#34;",
    "'": "&#39;",
    "{": "&#123;",
    "}": "&#125;",
}
_TABLE = str.maketrans(_ENTITIES)


def escape_text(value: object) -> str:
    return str(value).translate(_TABLE)


def format_number(value: float) -> str:
    """Compact, readable metric values for hover text: 0.5234, 0.000123, 1,234,567."""
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1e5:
        return f"{value:,.0f}"
    if magnitude == 0 or magnitude >= 1e-3:
        return f"{value:.4f}"
    return f"{value:.3g}"


def format_step(step: float) -> str:
    return f"{int(step):,}" if float(step).is_integer() else format_number(step)
