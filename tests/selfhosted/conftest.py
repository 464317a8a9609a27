from tests.dashboard.conftest import connection, make_job  # noqa: F401 - the fixtures, shared
from tests.jobs.conftest import make_dataset  # noqa: F401
