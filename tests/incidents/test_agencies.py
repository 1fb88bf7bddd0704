from __future__ import annotations

import argparse

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.commands import migrate as migrate_command
from callcenter.incidents import agencies
from callcenter.incidents.models import Agency
from callcenter.models import Role
from callcenter.settings import Settings, get_settings
from tests.conftest import LoginFn

REGENCY = {
    "polres_ttu",
    "kodim_1618",
    "pos_sar_kefa",
    "pln_ulp_kefa",
    "rsud_kefa",
    "damkar_ttu",
    "bpbd_ttu",
}


def test_seed_loads_the_configured_agencies_once(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    with session_factory.begin() as session:
        assert set(agencies.seed(session, settings.agencies)) == REGENCY
    with session_factory.begin() as session:
        session.scalars(select(Agency).where(Agency.code == "kodim_1618")).one().active = False
    with session_factory.begin() as session:
        assert agencies.seed(session, settings.agencies) == []
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Agency)) == 7
        # An admin's change survives the next migrate.
        assert not session.scalars(select(Agency.active).where(Agency.code == "kodim_1618")).one()


def test_migrate_command_seeds_agencies(
    database_url: str, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLCENTER_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        assert migrate_command.run(argparse.Namespace(check=False)) == 0
        assert migrate_command.run(argparse.Namespace(check=False)) == 0
    finally:
        get_settings.cache_clear()
    with session_factory() as session:
        assert set(session.scalars(select(Agency.code))) == REGENCY


def test_admin_adds_and_disables_an_agency(
    client: TestClient, login: LoginFn, seeded: None
) -> None:
    admin = login(Role.admin)
    created = client.post(
        "/api/v1/agencies",
        json={"code": "dinsos_ttu", "name": "Dinas Sosial TTU", "kind": "social"},
        headers=admin,
    )
    assert created.status_code == 201
    assert created.json() == {
        "code": "dinsos_ttu",
        "name": "Dinas Sosial TTU",
        "kind": "social",
        "active": True,
    }
    again = client.post(
        "/api/v1/agencies",
        json={"code": "dinsos_ttu", "name": "x", "kind": "social"},
        headers=admin,
    )
    assert again.status_code == 409
    disabled = client.patch("/api/v1/agencies/dinsos_ttu", json={"active": False}, headers=admin)
    assert disabled.json()["active"] is False
    operator = login(Role.operator)
    listed = {a["code"] for a in client.get("/api/v1/agencies", headers=operator).json()}
    assert listed == REGENCY
    everything = client.get("/api/v1/agencies?include_inactive=true", headers=admin).json()
    assert {a["code"] for a in everything} == {*REGENCY, "dinsos_ttu"}


def test_only_admins_manage_agencies(client: TestClient, login: LoginFn, seeded: None) -> None:
    body = {"code": "new_one", "name": "New", "kind": "social"}
    assert client.post("/api/v1/agencies", json=body).status_code == 401
    for role in (Role.operator, Role.supervisor):
        headers = login(role)
        assert client.post("/api/v1/agencies", json=body, headers=headers).status_code == 403
        patch = client.patch("/api/v1/agencies/polres_ttu", json={"active": False}, headers=headers)
        assert patch.status_code == 403
    bad = client.post(
        "/api/v1/agencies", json={**body, "code": "Has Spaces"}, headers=login(Role.admin)
    )
    assert bad.status_code == 422
