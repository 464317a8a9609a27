"""Signals the jobs app sends; apps above it connect in their ``AppConfig.ready``."""

from django.dispatch import Signal

# The run page (``jobs:detail``) and its live fragment (``jobs:sections``, ``live=True``) are
# being rendered. Arguments: ``request``, ``job``, ``live``. A receiver returns a
# ``jobs.pages.PageSection`` (HTML for one named slot of the page) or None to add nothing.
job_page = Signal()

# The job page's live JSON (``jobs:live``) is being answered, for one poll of the page.
# Arguments: ``request``, ``job`` (as the JSON reports it), ``after_step`` (the newest chart
# step the page has, or None when it shows no charts) and ``up_to_step`` (the step the JSON
# reports: nothing newer may be sent, so that everything the page shows agrees). A receiver
# returns a ``jobs.pages.LivePart`` (one key of the JSON) or None.
job_live = Signal()
