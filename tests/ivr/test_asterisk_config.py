"""The Asterisk files a PBX administrator installs: the promises they make, checked as text."""

from __future__ import annotations

import re
from pathlib import Path

from callcenter.settings import Settings
from tests.conftest import TRACES

ASTERISK = Path(__file__).resolve().parents[2] / "asterisk"


def sections(path: Path) -> dict[str, list[tuple[str, str]]]:
    """An Asterisk .conf as {section: [(key, value), ...]}, comments dropped."""
    result: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.split(";", 1)[0].strip()
        if match := re.match(r"^\[([^\]]+)\]", line):
            current = match[1]
            result.setdefault(current, [])
        elif "=" in line:
            key, _, value = line.partition("=")
            result.setdefault(current, []).append((key.strip(), value.lstrip(">").strip()))
    return result


def applications(lines: list[tuple[str, str]]) -> list[str]:
    """`exten => 112,1,App(...)` / `same => n,App(...)` → ['App', ...]."""
    apps = []
    for key, value in lines:
        if key in {"exten", "same"}:
            step = value.split(",", 2)[-1] if key == "exten" else value.split(",", 1)[-1]
            apps.append(re.sub(r"^\(\w+\)", "", step).split("(", 1)[0])
    return apps


def test_no_init_py_in_the_config_folder() -> None:
    """pyst2 installs a top-level package `asterisk`; this folder must never shadow it."""
    assert not (ASTERISK / "__init__.py").exists()


def test_the_112_line_never_hangs_up_on_the_caller() -> None:
    inbound = sections(ASTERISK / "extensions.conf")["from-pstn"]
    apps = applications(inbound)

    assert "Hangup" not in apps
    assert apps[:3] == ["NoOp", "Set", "Answer"]
    assert "AGI" in apps
    # after the queue: overflow event, message, and back to the queue
    assert apps[-4:] == ["UserEvent", "Playback", "Set", "Goto"]
    assert inbound[-1] == ("same", "n,Goto(queue)")


def test_same_call_flow_as_the_recorded_pbx() -> None:
    ours = (ASTERISK / "extensions.conf").read_text()
    recorded = (TRACES / "config" / "extensions.conf").read_text()
    for fragment in (
        "[from-pstn]",
        "exten => 112,1,",
        "Queue(emergency-112,,,,${Q_TIMEOUT})",
        "UserEvent(Emergency112Overflow,Uniqueid: ${UNIQUEID},CallerIDNum: ${CALLERID(num)},"
        "QueueStatus: ${QUEUESTATUS})",
        "Playback(custom/112-all-busy)",
    ):
        assert fragment in ours
        assert fragment in recorded
    assert "[emergency-112]" in (ASTERISK / "queues.conf").read_text()


def test_default_priority_in_the_dialplan_matches_the_config() -> None:
    globals_ = dict(sections(ASTERISK / "extensions.conf")["globals"])
    assert int(globals_["SIAGA112_PRIO_NORMAL"]) == Settings().ivr.priority_normal
    assert globals_["SIAGA112_AGI"].endswith(f":{Settings().fastagi.port}/ivr")


def test_queue_always_takes_a_112_caller() -> None:
    queue = dict(sections(ASTERISK / "queues.conf")["emergency-112"])
    assert queue["joinempty"] == "yes"
    assert queue["leavewhenempty"] == "no"
    assert queue["periodic-announce"] == Settings().ivr.prompts.please_hold


def test_ami_account_has_least_privilege() -> None:
    manager = sections(ASTERISK / "manager.conf")
    general = dict(manager["general"])
    assert general["timestampevents"] == "yes"
    assert not any(key == "channelvars" for key, _ in manager["general"])
    user = dict(manager[Settings().ami.username])
    read = set(user["read"].split(","))
    write = set(user["write"].split(","))
    assert read == {"call", "agent", "user", "dialplan", "cdr", "system"}
    assert write == {"reporting"}
    assert user["deny"] == "0.0.0.0/0.0.0.0"


def test_please_hold_plays_within_each_queue_round() -> None:
    """Each Queue() round (Q_TIMEOUT) restarts app_queue's periodic-announce timer: a frequency
    of 30 s against Q_TIMEOUT = 25 s meant the caller never heard it."""
    queue = dict(sections(ASTERISK / "queues.conf")["emergency-112"])
    q_timeout = int(dict(sections(ASTERISK / "extensions.conf")["globals"])["Q_TIMEOUT"])
    assert int(queue["periodic-announce-frequency"]) < q_timeout


def test_every_agency_has_a_dispatch_target_and_every_target_is_shipped() -> None:
    """[dispatch] used to dial Local/110@agencies, a context nobody shipped: Asterisk loads that
    without a warning and the transfer fails. Every context the dialplan goes to or dials must
    be in the file, and each configured agency has its extension."""
    text = (ASTERISK / "extensions.conf").read_text()
    conf = sections(ASTERISK / "extensions.conf")
    targets = set(re.findall(r"Goto(?:If)?\([^)]*?([a-z0-9-]+),[\w$]+,\w+\)", text))
    targets |= set(re.findall(r"Local/[^@]+@([\w-]+)", text))
    assert targets <= set(conf), targets - set(conf)
    dispatch = conf["dispatch"]
    agencies = {value.split("=", 1)[1].rstrip(")") for key, value in dispatch if "AGENCY=" in value}
    assert agencies == {agency.code for agency in Settings().agencies}
    globals_ = dict(conf["globals"])
    for code in agencies:
        assert globals_[f"SIAGA112_AGENCY_{code.upper()}"].startswith("PJSIP/")
    assert "Dial(${AGENCY_DIAL},30)" in text


def test_the_dialplan_reports_the_caller_presentation() -> None:
    """So a withheld caller is marked private even when the IVR is down."""
    inbound = sections(ASTERISK / "extensions.conf")["from-pstn"]
    sets = [value for key, value in inbound if "Set(CALLER_PRES=${CALLERID(pres)})" in value]
    assert len(sets) == 1


def test_the_readme_quotes_what_asterisk_prints_when_the_backend_is_down() -> None:
    """With the IVR down nothing sets QUEUE_PRIO before the "IVR done" NoOp: it prints empty,
    and the next step sets the default (the README used to promise QUEUE_PRIO=10 there)."""
    inbound = [value for _key, value in sections(ASTERISK / "extensions.conf")["from-pstn"]]
    noop = next(i for i, step in enumerate(inbound) if "NoOp(IVR done:" in step)
    default = next(i for i, step in enumerate(inbound) if "Set(QUEUE_PRIO=${SIAGA112" in step)
    assert noop < default
    readme = (ASTERISK / "README.md").read_text()
    assert 'NoOp("IVR done: AGISTATUS=FAILURE CALLER_FLAG= QUEUE_PRIO=")' in readme
    assert "QUEUE_PRIO=10)" in readme
