from sqlalchemy import Engine, inspect

from callcenter.db.migrate import check, is_at_head


def test_schema_is_at_head_and_matches_models(engine: Engine) -> None:
    assert is_at_head(engine)
    check(engine)  # raises if models and migrations disagree (alembic check)
    assert {"calls", "call_events", "callers", "users", "classification_changes"} <= set(
        inspect(engine).get_table_names()
    )
