"""The job fixtures (a worker's resources on the test database) for the job trace tests."""

from tests.infra.jobs.conftest import job_resources, job_settings, sessionmaker

__all__ = ["job_resources", "job_settings", "sessionmaker"]
