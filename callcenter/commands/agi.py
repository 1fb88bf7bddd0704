"""`callcenter agi`: the IVR as a process AGI, e.g. `AGI(/opt/siaga112/.venv/bin/callcenter,agi)`.

Asterisk starts this process for every 112 call and the caller hears silence until the first
command, so cli.py sends `agi` straight here without loading the other commands, and the
database side loads in the look-up thread (callcenter/ivr/lookup.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "agi", help="run the 112 IVR as a process AGI (Asterisk starts it with AGI())"
    )
    parser.add_argument("agi_args", nargs="*", help="AGI() arguments (ignored: the env has all)")
    parser.set_defaults(func=lambda args: main(args.agi_args))


def main(argv: Sequence[str] = ()) -> int:
    # Until pyst2's AGI() installs its handler, a SIGHUP (caller gone) must not kill us before
    # the run is recorded: Asterisk's 511 tells the IVR anyway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from callcenter.ivr.flow import Outcome
    from callcenter.ivr.runner import run_agi
    from callcenter.settings import get_settings

    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level,
        format="siaga112-agi[%(process)d] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    outcome = run_agi(sys.stdin.buffer, sys.stdout.buffer, settings, release=_release_stdio)
    return 1 if outcome is Outcome.agi_error else 0


def _release_stdio() -> None:
    """Hand the channel back: Asterisk sees EOF and carries on with the dialplan."""
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
