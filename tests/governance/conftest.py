"""The operations tests' real workers, simulators and helpers, shared with the approval tests."""

from tests.operations.conftest import make_sim, redis_db, register, sim_app, worker, workers  # noqa: F401
