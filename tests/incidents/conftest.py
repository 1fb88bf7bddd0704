from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from callcenter.incidents import agencies
from callcenter.models import Classification
from callcenter.settings import Settings
from tests.builders import make_call


@pytest.fixture
def seeded(session_factory: sessionmaker[Session], settings: Settings) -> None:
    with session_factory.begin() as session:
        agencies.seed(session, settings.agencies)


@pytest.fixture
def emergency_call_id(session_factory: sessionmaker[Session], seeded: None) -> int:
    with session_factory.begin() as session:
        return make_call(session, classification=Classification.emergency).id
