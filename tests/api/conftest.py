from tests.jobs.conftest import make_dataset  # noqa: F401 - the fixture, shared
