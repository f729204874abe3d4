"""Speaking style apart from timbre: pitch level and range, speaking rate, loudness.

Measured with librosa and scipy (pYIN F0, syllable-nucleus rate), moved with Praat's PSOLA "Change gender" command
through parselmouth, which changes pitch median, pitch range and duration in one pass while
keeping the formants (the timbre) where they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .audio import PEAK_CEILING, rms_dbfs
from .clip_cache import ClipCache

F0_MIN_HZ = 60.0
F0_MAX_HZ = 500.0
ANALYSIS_SECONDS = 30.0  # pYIN is slow; 30 s describe a speaking style well enough
PYIN_RESOLUTION = 0.2  # semitones per pitch bin: a median to 0.6 %, at a quarter of 0.1's cost
RATE_LIMITS = (0.5, 2.0)  # duration factors outside this sound broken
RANGE_LIMITS = (0.25, 4.0)
SOUNDING_DB = 30.0  # frames within this of the loudest count as speech
NUCLEUS_DIP_DB = 3.0
MIN_SYLLABLE_FRAMES = 10  # 100 ms at the 10 ms hop: no more than 10 syllables a second


@dataclass(frozen=True)
class Prosody:
    """What a clip's speaking style is measured as."""

    f0_median_hz: float | None  # None: no voiced frames found
    f0_range_semitones: float | None  # 5th to 95th percentile of voiced F0
    syllables_per_second: float  # loudness peaks per second of sounding time: speaking rate
    loudness_dbfs: float  # RMS of the sounding part
    f0_low_hz: float | None = None  # the 5th and 95th percentiles the range spans
    f0_high_hz: float | None = None

    def as_dict(self) -> dict:
        return {
            key: (round(v, 3) if isinstance(v, float) else v) for key, v in asdict(self).items()
        }


def measure(samples: np.ndarray, rate: int, loudness_dbfs: float | None = None) -> Prosody:
    """Prosody of a mono clip. `loudness_dbfs` overrides the measured level (for clips that
    were normalised after reading: pass their level as read)."""
    import librosa

    samples = samples[: int(ANALYSIS_SECONDS * rate)]
    f0, voiced, _ = librosa.pyin(
        samples,
        fmin=F0_MIN_HZ,
        fmax=F0_MAX_HZ,
        sr=rate,
        frame_length=_frame_length(rate),
        hop_length=rate // 50,
        resolution=PYIN_RESOLUTION,
    )
    f0 = f0[voiced & np.isfinite(f0)] if f0 is not None else np.zeros(0)
    median = float(np.median(f0)) if f0.size >= 5 else None
    spread = low = high = None
    if median is not None:
        low, high = (float(v) for v in np.percentile(f0, [5, 95]))
        spread = float(12.0 * np.log2(high / low))
    syllables, sounding_seconds = syllable_nuclei(samples, rate)
    return Prosody(
        f0_median_hz=median,
        f0_range_semitones=spread,
        syllables_per_second=syllables / max(sounding_seconds, 1e-3),
        loudness_dbfs=rms_dbfs(samples) if loudness_dbfs is None else float(loudness_dbfs),
        f0_low_hz=low,
        f0_high_hz=high,
    )


STYLE_CLIPS: ClipCache[Prosody] = ClipCache(max_entries=64)  # Prosody is a few floats


def style_prosody(samples: np.ndarray, rate: int, loudness_dbfs: float | None = None) -> Prosody:
    """`measure` of a style clip, remembered by its samples: the clip often repeats across
    runs, and pYIN is the slowest part of a style move."""
    what = f"prosody@{rate}|{loudness_dbfs!r}"
    return STYLE_CLIPS.get(samples, what, lambda clip: measure(clip, rate, loudness_dbfs))


def syllable_nuclei(samples: np.ndarray, rate: int) -> tuple[int, float]:
    """Count of syllable nuclei (loudness peaks standing NUCLEUS_DIP_DB above the dips around
    them, at most 10 a second, within SOUNDING_DB of the loudest) and seconds of sounding
    time; the intensity-peak method of de Jong and Wempe (2009), without its voicing check."""
    import librosa
    from scipy.ndimage import uniform_filter1d
    from scipy.signal import find_peaks

    hop = rate // 100
    level = librosa.feature.rms(y=samples, frame_length=4 * hop, hop_length=hop)[0]
    level_db = uniform_filter1d(librosa.amplitude_to_db(level, ref=np.max), size=5)
    peaks, _ = find_peaks(
        level_db, height=-SOUNDING_DB, prominence=NUCLEUS_DIP_DB, distance=MIN_SYLLABLE_FRAMES
    )
    sounding_seconds = float(np.count_nonzero(level_db > -SOUNDING_DB)) * hop / rate
    return len(peaks), sounding_seconds


def _frame_length(rate: int) -> int:
    """pYIN needs two periods of the lowest F0 in a frame: a power of two that fits them."""
    need = 2 * rate / F0_MIN_HZ
    return int(2 ** np.ceil(np.log2(need)))


@dataclass(frozen=True)
class StyleMove:
    """The change applied to move one clip's prosody toward another's."""

    f0_median_hz: float | None  # the new median (None: pitch left alone)
    f0_range_factor: (
        float  # Praat's pitch range factor: scales each F0's distance from the median in Hz
    )
    duration_factor: float  # > 1 slower
    gain_db: float

    def as_dict(self) -> dict:
        return {
            key: (round(v, 3) if isinstance(v, float) else v) for key, v in asdict(self).items()
        }


def range_factor_for(current: Prosody, semitones: float) -> float:
    """The pitch range factor r that takes `current`'s F0 range (5th to 95th percentile) to
    `semitones` under Praat's "Change gender".

    Praat (6.1, as parselmouth bundles it) scales each F0's distance from the median in Hz,
    f -> m + r (f - m), after moving the median (which does not change a range in semitones),
    so the ratio of the two ranges in semitones is not the factor. With the percentiles at
    m (1 + a) and m (1 - b), the new range is 12 log2((1 + r a) / (1 - r b)); setting it to
    the target R = 2^(semitones / 12) gives r = (R - 1) / (a + R b). Without measured
    percentiles the range is taken as symmetric in semitones about the median."""
    median = current.f0_median_hz
    spread = current.f0_range_semitones or 0.0
    low = current.f0_low_hz or median * 2.0 ** (-spread / 24)
    high = current.f0_high_hz or median * 2.0 ** (spread / 24)
    above, below = (high - median) / median, (median - low) / median
    if above + below <= 0:
        return 1.0
    ratio = 2.0 ** (semitones / 12.0)
    return (ratio - 1.0) / (above + ratio * below)


def plan_move(current: Prosody, target: Prosody) -> StyleMove:
    """How to move `current` toward `target`, within limits that keep speech natural."""
    median, range_factor = None, 1.0
    if current.f0_median_hz and target.f0_median_hz:
        median = target.f0_median_hz
        if current.f0_range_semitones and target.f0_range_semitones:
            range_factor = float(
                np.clip(range_factor_for(current, target.f0_range_semitones), *RANGE_LIMITS)
            )
    duration = 1.0
    if current.syllables_per_second > 0 and target.syllables_per_second > 0:
        duration = float(
            np.clip(current.syllables_per_second / target.syllables_per_second, *RATE_LIMITS)
        )
    gain = float(target.loudness_dbfs - current.loudness_dbfs)
    return StyleMove(median, range_factor, duration, gain)


def apply_move(samples: np.ndarray, rate: int, move: StyleMove) -> np.ndarray:
    """Pitch median and range, duration (PSOLA, via Praat), then loudness (gain, peak-capped)."""
    import warnings

    import parselmouth
    from parselmouth.praat import call

    out = samples.astype(np.float32)
    if move.f0_median_hz or move.f0_range_factor != 1.0 or move.duration_factor != 1.0:
        sound = parselmouth.Sound(samples.astype(np.float64), sampling_frequency=rate)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", parselmouth.PraatWarning)  # "no voiced segments"
            changed = call(
                sound,
                "Change gender",
                F0_MIN_HZ,
                F0_MAX_HZ,
                1.0,  # formant shift ratio: 1 keeps the vocal tract, the timbre
                move.f0_median_hz or 0.0,  # 0: keep the median
                move.f0_range_factor,
                move.duration_factor,
            )
        out = changed.values[0].astype(np.float32)
    out = out * np.float32(10.0 ** (move.gain_db / 20.0))
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > PEAK_CEILING:
        out *= PEAK_CEILING / peak
    return out


def transfer(
    samples: np.ndarray, rate: int, target: Prosody, current: Prosody | None = None
) -> tuple[np.ndarray, Prosody, StyleMove]:
    """Move a clip's style toward `target`; returns the new samples, what the clip had, and
    the move applied."""
    current = current or measure(samples, rate)
    move = plan_move(current, target)
    return apply_move(samples, rate, move), current, move
