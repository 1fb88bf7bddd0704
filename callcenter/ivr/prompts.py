"""`make prompts`: the IVR's prompt texts (config `[ivr.prompt_texts]`) as Asterisk-ready audio.

espeak-ng speaks each text (Indonesian voice), sox turns it into 8 kHz mono 16-bit WAV, the
format Asterisk plays without transcoding on an 8 kHz call. The files are named after
`[ivr.prompts]` (``custom/112-greeting`` → ``OUT/custom/112-greeting.wav``); copy OUT's
contents to ``/var/lib/asterisk/sounds/<language>/``. Recorded human prompts can replace them.

    python -m callcenter.ivr.prompts --out prompts-out
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from callcenter.settings import IvrSettings, get_settings

log = logging.getLogger(__name__)
SAMPLE_RATE = 8000


def prompt_files(ivr: IvrSettings, out: Path) -> dict[Path, str]:
    """Output WAV path → text, for every prompt that has both a name and a text.

    >>> from callcenter.settings import IvrSettings
    >>> ivr = IvrSettings(prompt_texts={"greeting": "Halo", "unused": "x"})
    >>> {str(path): text for path, text in prompt_files(ivr, Path("out")).items()}
    {'out/custom/112-greeting.wav': 'Halo'}
    """
    names = ivr.prompts.model_dump()
    unknown = sorted(set(ivr.prompt_texts) - set(names))
    if unknown:
        log.warning("prompt texts without a prompt name in [ivr.prompts]: %s", ", ".join(unknown))
    return {
        out / f"{names[key]}.wav": text
        for key, text in ivr.prompt_texts.items()
        if key in names and text.strip()
    }


def synthesise_commands(text: str, raw: Path, wav: Path, voice: str) -> list[list[str]]:
    """The two commands that make `wav` from `text` (espeak-ng → `raw`, sox → `wav`, silence
    trimmed at both ends)."""
    return [
        ["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text],
        [
            *["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed"],
            str(wav),
            # espeak-ng's leading and trailing silence cut: the caller's seconds are counted.
            *["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%"],
            "reverse",
        ],
    ]


def make_prompts(ivr: IvrSettings, out: Path, voice: str = "id") -> list[Path]:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: apt-get install espeak-ng sox")
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        for wav, text in prompt_files(ivr, out).items():
            wav.parent.mkdir(parents=True, exist_ok=True)
            for command in synthesise_commands(text, Path(scratch) / "speech.wav", wav, voice):
                subprocess.run(command, check=True, capture_output=True)
            written.append(wav)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("prompts-out"))
    parser.add_argument("--voice", default="id", help="espeak-ng voice (default: Indonesian)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for wav in make_prompts(get_settings().ivr, args.out, args.voice):
        log.info("wrote %s", wav)
    return 0


if __name__ == "__main__":
    sys.exit(main())
