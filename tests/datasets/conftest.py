"""Dataset tests use the memory service fixtures (a real redis-server and memory process)."""

from tests.memory.conftest import start_memory  # noqa: F401 - a fixture
