from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from callcenter.settings import Settings
from tests.recap import Recap, load


@pytest.fixture
def recap(session_factory: sessionmaker[Session], settings: Settings) -> Recap:
    with session_factory.begin() as session:
        return load(session, settings)
