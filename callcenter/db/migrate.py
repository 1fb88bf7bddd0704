"""Schema management: the schema comes only from the Alembic migrations in migrations/."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from callcenter.db import make_sessionmaker, transaction
from callcenter.incidents import agencies
from callcenter.settings import SHARE_ROOT, Settings

# Alembic is imported by the functions that use it: it brings Mako and Pygments (~0.15 s), which
# processes that only import this module (`callcenter --help`, `callcenter backup`) never need.
if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = SHARE_ROOT / "migrations"


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def upgrade(engine: Engine, revision: str = "head", *, lock_timeout: str = "5s") -> None:
    """Each migration in a transaction of its own (migrations/env.py); on PostgreSQL one that
    waits longer than ``lock_timeout`` for a lock fails, and those before it stay applied."""
    from alembic import command

    config = alembic_config(engine)
    config.attributes["lock_timeout"] = lock_timeout
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()


def upgrade_and_seed(engine: Engine, settings: Settings) -> list[str]:
    """What `callcenter migrate` and `callcenter serve` both do before serving: the schema to
    head, then the configured agencies whose code is new (incidents need them). Returns the
    codes added."""
    upgrade(engine)
    with transaction(make_sessionmaker(engine)) as session:
        return agencies.seed(session, settings.agencies)


def head_revisions(engine: Engine) -> set[str]:
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def is_at_head(engine: Engine) -> bool:
    return current_revisions(engine) == head_revisions(engine)


def is_at_head_or_unreachable(engine: Engine) -> bool | None:
    """``is_at_head``, or None when the database cannot be reached (a listener starts anyway:
    it spools until the database is back)."""
    try:
        return is_at_head(engine)
    except (OperationalError, InterfaceError):
        return None


def check(engine: Engine) -> None:
    """Raise if the models and the migrations disagree (`alembic check`)."""
    from alembic import command

    config = alembic_config(engine)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.check(config)
