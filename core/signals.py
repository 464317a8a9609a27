"""Signals core sends; the apps above connect to them in their ``AppConfig.ready``."""

from django.dispatch import Signal

# ``tuneboard_bootstrap`` ran (first-run setup): receivers create what their app needs, given
# ``sandbox_url`` (the base URL of this instance's sandbox API, or None). Idempotent.
bootstrap = Signal()
