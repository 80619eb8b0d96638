from tests.audit.personas import carol, events, teams  # noqa: F401
