"""Imports every module that defines tables, so Base.metadata knows them all (Alembic needs it)."""

from callcenter import models  # noqa: F401
from callcenter.ivr import models as ivr_models  # noqa: F401
