"""Signals the jobs app sends; apps above it connect in their ``AppConfig.ready``."""

from django.dispatch import Signal

# The run page (``jobs:detail``) and its live fragment (``jobs:sections``, ``live=True``) are
# being rendered. Arguments: ``request``, ``job``, ``live``. A receiver returns a
# ``jobs.pages.PageSection`` (HTML for one named slot of the page) or None to add nothing.
job_page = Signal()
