"""The caller-ID table from issue 2: kept as received, E.164 when it is a number, never guessed."""

import subprocess
import sys
from pathlib import Path

import pytest

from callcenter.models import CallerIdStatus
from callcenter.phone import normalise


@pytest.mark.parametrize(
    ("raw", "e164", "line_type", "region"),
    [
        ("081234567890", "+6281234567890", "mobile", "Indonesia"),
        ("+6281234567890", "+6281234567890", "mobile", "Indonesia"),
        ("6281234567890", "+6281234567890", "mobile", "Indonesia"),
        ("0388 21234", "+6238821234", "fixed", "Kefamenanu/Soe"),
    ],
)
def test_numbers_become_e164_with_line_type_and_region(
    raw: str, e164: str, line_type: str, region: str
) -> None:
    number = normalise(raw, "ID")
    assert number.status is CallerIdStatus.valid
    assert (number.e164, number.line_type) == (e164, line_type)
    assert number.region == region
    assert number.raw == raw
    assert number.key == e164


def test_without_place_the_number_is_the_same_and_has_no_region() -> None:
    """The IVR's lookup: the E.164 number alone, without loading the place names."""
    number = normalise("0388 21234", "ID", place=False)
    assert (number.status, number.e164, number.line_type) == (
        CallerIdStatus.valid,
        "+6238821234",
        "fixed",
    )
    assert number.region is None


@pytest.mark.parametrize("raw", ["anonymous", "unknown", "<unknown>", "", "  ", "Anonymous"])
def test_withheld_caller_ids_are_withheld(raw: str) -> None:
    number = normalise(raw)
    assert number.status is CallerIdStatus.withheld
    assert (number.e164, number.line_type, number.region) == (None, None, None)
    assert number.raw == raw


def test_none_is_withheld() -> None:
    assert normalise(None).status is CallerIdStatus.withheld


@pytest.mark.parametrize("raw", ["abc#!", "'; DROP TABLE", "0812-ABC", "++62"])
def test_malformed_caller_ids_are_invalid_and_kept_as_received(raw: str) -> None:
    number = normalise(raw)
    assert number.status is CallerIdStatus.invalid
    assert number.e164 is None
    assert number.raw == raw
    assert number.key == f"invalid:{raw.strip()}"


def test_112_is_a_short_code_not_e164() -> None:
    number = normalise("112")
    assert number.status is CallerIdStatus.short_code
    assert number.e164 is None
    assert number.raw == "112"


LISTENER_STARTS = """
from callcenter.ami.store import CallStore
from callcenter.db import make_engine, make_sessionmaker
CallStore(make_sessionmaker(make_engine("sqlite:///{tmp}/x.db")), pbx="p").start()
"""
API_STARTS = """
from fastapi.testclient import TestClient
from callcenter.app import create_app
from callcenter.db import make_engine, migrate
from callcenter.settings import Settings
settings = Settings(
    environment="test",
    database_url="sqlite:///{tmp}/api.db",
    data_dir="{tmp}/data",
    token_secret="test-secret-" + "x" * 32,
    ami={{"enabled": False}},
    fastagi={{"enabled": False}},
)
migrate.upgrade(make_engine(settings.resolved_database_url))
with TestClient(create_app(settings)):
    pass
"""


@pytest.mark.parametrize("starts", [LISTENER_STARTS, API_STARTS], ids=["listener", "api"])
def test_the_listener_and_the_api_load_the_place_names_before_the_first_call(
    starts: str, tmp_path: Path
) -> None:
    """Loaded lazily, the place names cost the first caller after a restart ~0.4 s."""
    probe = (
        "import sys\n"
        + starts.format(tmp=tmp_path)
        + "print('phonenumbers.geocoder' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "True"
