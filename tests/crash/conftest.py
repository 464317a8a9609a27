from tests.jobs.conftest import make_dataset, sandbox_connection
from tests.jobs.test_views import _catalog

__all__ = ["_catalog", "make_dataset", "sandbox_connection"]
