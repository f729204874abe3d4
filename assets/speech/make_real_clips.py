"""Build the real-speech example clips from Debian's `pocketsphinx-testdata` package
(`apt-get install pocketsphinx-testdata`): `python assets/speech/make_real_clips.py`.
See SOURCES.md for where each recording comes from and its licence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

DATA = Path("/usr/share/pocketsphinx/test/data")
HERE = Path(__file__).resolve().parent
PAUSE_S = 0.3
CLIPS = {
    "reader_librivox.wav": [
        "librivox/sense_and_sensibility_01_austen_64kb-0870.wav",
        "librivox/sense_and_sensibility_01_austen_64kb-0880.wav",
    ],
    "cards_speaker.wav": [f"cards/00{n}.wav" for n in range(1, 6)],
}


def joined(paths: list[str]) -> tuple[np.ndarray, int]:
    pieces, rate = [], None
    for name in paths:
        samples, rate_here = sf.read(DATA / name, dtype="float32")
        if rate not in (None, rate_here):
            raise ValueError(f"{name} is at {rate_here} Hz, the others at {rate}")
        rate = rate_here
        pieces += [samples, np.zeros(int(PAUSE_S * rate), dtype=np.float32)]
    return np.concatenate(pieces[:-1]), rate


def main() -> None:
    for name, parts in CLIPS.items():
        samples, rate = joined(parts)
        sf.write(HERE / name, samples, rate, subtype="PCM_16")
        print(HERE / name, f"{len(samples) / rate:.1f} s")


if __name__ == "__main__":
    main()
