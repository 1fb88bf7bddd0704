"""A configuration that cannot work is one clear line and an exit code, never a traceback
and never silently ignored (issue 12, item 15)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from callcenter.settings import DEFAULT_CONFIG_FILE
from tests.test_serve_workers import CALLCENTER


def run(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env["CALLCENTER_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cc.db'}"
    env.update(environ)
    return subprocess.run(
        [CALLCENTER, "migrate", "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    result = run(tmp_path, CALLCENTER_CONFIG=str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert one_line(result) == f"callcenter: config file {tmp_path / 'nope.toml'} not found " + (
        "(CALLCENTER_CONFIG names it)"
    )


def test_a_misspelt_key_in_the_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "cc.toml"
    config.write_text(DEFAULT_CONFIG_FILE.read_text().replace("[ami]\n", "[ami]\nportt = 5039\n"))
    result = run(tmp_path, CALLCENTER_CONFIG=str(config))
    assert result.returncode == 2
    assert one_line(result) == f"callcenter: config file {config}: unknown key ami.portt"


def test_a_misspelt_variable_is_named(tmp_path: Path) -> None:
    result = run(tmp_path, CALLCENTER_AMI__PORTT="5039")
    assert result.returncode == 2
    assert "ami.portt: Extra inputs are not permitted" in one_line(result)


def test_a_file_that_is_not_toml(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[ami\nport = \n")
    result = run(tmp_path, CALLCENTER_CONFIG=str(config))
    assert result.returncode == 2
    assert one_line(result).startswith(f"callcenter: config file {config} is not valid TOML:")


@pytest.mark.parametrize(
    ("url", "code", "says"),
    [
        ("notaurl", 2, "is not a URL like postgresql+psycopg://user@host/db"),
        ("postgresql+asyncpg://u:s3cret@127.0.0.1/db", 2, "driver is not installed"),
        ("postgresql+psycopg://u:s3cret@127.0.0.1:1/db", 3, "cannot use the database:"),
    ],
)
def test_a_database_url_that_cannot_work(tmp_path: Path, url: str, code: int, says: str) -> None:
    result = run(tmp_path, CALLCENTER_DATABASE_URL=url)
    assert result.returncode == code
    line = one_line(result)
    assert says in line
    assert "s3cret" not in line
