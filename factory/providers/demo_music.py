"""The demo sounds: a soft pad and an arpeggio in one key, with an echo.

The key and the tune come from generators the caller seeds, so the same
generators always give the same samples. At least four chords play however
short the clip, and each chord's release and the fades at both ends keep
the sound free of clicks.
"""
import math

import numpy as np

TAU = 2 * math.pi
CHORD_SECONDS = 1.5
SCALES = (
    (0, 2, 4, 5, 7, 9, 11),  # major
    (0, 2, 3, 5, 7, 8, 10),  # natural minor
    (0, 2, 3, 5, 7, 9, 10),  # dorian
    (0, 2, 4, 6, 7, 9, 11),  # lydian
)
PROGRESSIONS = ((0, 5, 3, 4), (0, 3, 5, 4), (0, 4, 5, 3), (5, 3, 0, 4))


def _note_hz(midi: float) -> float:
    """Equal-tempered frequency of a MIDI note number."""
    return 440.0 * 2 ** ((midi - 69) / 12)


def _tone(hz: float, t: np.ndarray) -> np.ndarray:
    """A soft, slightly bell-like tone: a sine with two quiet overtones."""
    overtones = ((1, 1.0), (2, 0.25), (3, 0.08))
    return sum(gain * np.sin(TAU * k * hz * t) for k, gain in overtones)


def _chord(root: int, scale: tuple[int, ...], degree: int) -> list[int]:
    """MIDI notes of the seventh-free chord on a scale degree, plus octave."""
    return [
        root + scale[(degree + k) % 7] + 12 * ((degree + k) // 7)
        for k in (0, 2, 4, 7)
    ]


def compose(
    key_rng: np.random.Generator, tune_rng: np.random.Generator,
    seconds: float, rate: int,
) -> np.ndarray:
    """A soft pad plus an arpeggio cycling through four chords of one key."""
    root = 48 + int(key_rng.integers(0, 8))
    scale = SCALES[key_rng.integers(len(SCALES))]
    progression = PROGRESSIONS[tune_rng.integers(len(PROGRESSIONS))]
    pattern = tune_rng.permutation(4)
    total = max(1, round(seconds * rate))
    chords = max(4, round(seconds / CHORD_SECONDS))
    signal, step = np.zeros(total), int(rate * 60 / 110 / 2)  # 110 bpm eighths
    for index in range(chords):
        notes = _chord(root, scale, progression[index % 4])
        start, stop = index * total // chords, (index + 1) * total // chords
        t = np.arange(stop - start) / rate
        release = np.minimum(1, (t[-1] - t) / 0.05) if t.size else t  # no click
        swell = np.minimum(1, t / 0.3) * np.exp(-t * 0.6) * release
        for note in notes[:3]:
            signal[start:stop] += 0.12 * swell * np.sin(TAU * _note_hz(note - 12) * t)
        for offset in range(start, stop, step):
            note = notes[pattern[(offset - start) // step % 4]]
            t = np.arange(min(step * 3, total - offset)) / rate
            pluck = 0.3 * np.exp(-t * 5) * _tone(_note_hz(note), t)
            signal[offset:offset + t.size] += pluck
    return signal


def add_echo(signal: np.ndarray, rate: int) -> np.ndarray:
    """Two fading repeats for a sense of space."""
    delay = int(0.19 * rate)
    wet = signal.copy()
    for repeat in (1, 2):
        shift = delay * repeat
        if shift < signal.size:
            wet[shift:] += signal[:-shift] * 0.35**repeat
    return wet


def fades(size: int, rate: int) -> np.ndarray:
    """A gain curve with a short fade in and a longer fade out."""
    fade_in, fade_out = min(size // 4, rate // 20), min(size // 4, rate * 2 // 5)
    envelope = np.ones(size)
    envelope[:fade_in] = np.linspace(0, 1, fade_in)
    envelope[size - fade_out:] = np.linspace(1, 0, fade_out)
    return envelope
