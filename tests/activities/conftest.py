"""Fixtures for the activity tests (the helpers live in ``world.py``)."""

from tests.activities.world import frozen, world

__all__ = ["frozen", "world"]
