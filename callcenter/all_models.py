"""Imports every module that defines tables, so Base.metadata knows them all (Alembic needs it)."""

from callcenter import models  # noqa: F401
