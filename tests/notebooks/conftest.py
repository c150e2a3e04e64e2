"""The notebooks read the store the demo seeder's tests build (``tests/test_demo.py``)."""

from tests.test_demo import seeded_dir  # noqa: F401 (fixture)
