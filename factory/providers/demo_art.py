"""Offline, deterministic pictures, clips and sounds for the demo provider.

The same (prompt, seed, size) always gives the same bytes on one platform.
The prompt picks the palette and the musical key; the seed moves the
composition, so a seed sweep looks like variations on one theme.
"""

import colorsys
import hashlib
import io
import math
import wave
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image

MIN_SIDE, MAX_SIDE = 16, 4096
MAX_SECONDS = 30.0
IMAGE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
FIELD_SIDE = 200  # smooth layers are computed this small, then upscaled
TAU = 2 * math.pi

# Accent hue offsets in turns: analogous, triadic, split-complementary and
# complementary, the schemes that read as harmonious.
ACCENT_OFFSETS = (0.08, 1 / 3, 5 / 12, 0.5)
CHORD_SECONDS = 1.5
SCALES = (
    (0, 2, 4, 5, 7, 9, 11),  # major
    (0, 2, 3, 5, 7, 8, 10),  # natural minor
    (0, 2, 3, 5, 7, 9, 10),  # dorian
    (0, 2, 4, 6, 7, 9, 11),  # lydian
)
PROGRESSIONS = ((0, 5, 3, 4), (0, 3, 5, 4), (0, 4, 5, 3), (5, 3, 0, 4))


@dataclass(frozen=True)
class Scene:
    """Everything random about one picture, drawn once from the seed."""

    palette: np.ndarray  # (6, 3) five stops dark to light, then an accent
    waves: np.ndarray  # (4, 4) rows of kx, ky, phase, speed
    warp: np.ndarray  # (4,) warp amounts and frequencies
    glows: np.ndarray  # (n, 6) x, y, radius, strength, drift x, drift y
    discs: np.ndarray  # (n, 7) x, y, radius, alpha, drift, palette index, rim
    light: np.ndarray  # (2,) direction the light falls from


def _rng(*parts: object) -> np.random.Generator:
    """A generator seeded by a hash of the given parts."""
    text = "\x1f".join(str(part) for part in parts)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def _check_int(name: str, value: int, low: int, high: int) -> None:
    """Reject a non-integer or a value outside low..high."""
    if type(value) is not int or not low <= value <= high:
        raise ValueError(
            f"{name} must be an integer from {low} to {high}, got {value!r}"
        )


def _check_size(width: int, height: int) -> None:
    """Reject sides outside MIN_SIDE..MAX_SIDE."""
    _check_int("width", width, MIN_SIDE, MAX_SIDE)
    _check_int("height", height, MIN_SIDE, MAX_SIDE)


def _check_seconds(seconds: float) -> None:
    """Reject durations that are not in (0, MAX_SECONDS]."""
    if not isinstance(seconds, (int, float)) or not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be > 0 and <= {MAX_SECONDS:g}, got {seconds!r}")


def _palette(prompt: str) -> np.ndarray:
    """A hue-shifted ramp of five stops plus one accent, from the prompt."""
    rng = _rng("palette", prompt)
    base, drift = rng.random(), rng.choice([-1, 1]) * rng.uniform(0.03, 0.07)
    accent = (base + ACCENT_OFFSETS[rng.integers(len(ACCENT_OFFSETS))]) % 1.0
    ramp = [
        ((base + drift * step) % 1.0, saturation, value)
        for step, saturation, value in (
            (-1, 0.85, 0.09), (0, 0.85, 0.38), (1, 0.78, 0.72),
            (2, 0.55, 0.93), (3, 0.25, 1.00),
        )
    ]
    stops = [*ramp, (accent, 0.65, 0.95)]
    return np.array([colorsys.hsv_to_rgb(*stop) for stop in stops])


def _scene(prompt: str, seed: int) -> Scene:
    """Draw the composition for (prompt, seed)."""
    rng = _rng("scene", prompt, seed)
    angles = rng.uniform(0, TAU, 4)
    freqs = rng.uniform(1.2, 3.4, 4)
    waves = np.column_stack([
        freqs * np.cos(angles), freqs * np.sin(angles),
        rng.uniform(0, TAU, 4), rng.choice([-2.0, -1.0, 1.0, 2.0], 4),
    ])
    glow_count, disc_count = rng.integers(3, 6), rng.integers(10, 22)
    glows = np.column_stack([
        rng.uniform(-1.2, 1.2, (glow_count, 2)),
        rng.uniform(0.35, 0.8, glow_count), rng.uniform(0.15, 0.35, glow_count),
        rng.uniform(-0.15, 0.15, (glow_count, 2)),
    ])
    discs = np.column_stack([
        rng.uniform(-1.3, 1.3, (disc_count, 2)),
        0.03 + 0.3 * rng.random(disc_count) ** 2,  # mostly small, a few large
        rng.uniform(0.10, 0.38, disc_count), rng.uniform(0.1, 0.4, disc_count),
        rng.choice([2, 3, 5, 5], disc_count), rng.uniform(0.0, 0.6, disc_count),
    ])
    light = rng.normal(size=2)
    return Scene(
        palette=_palette(prompt), waves=waves,
        warp=np.array([*rng.uniform(0.25, 0.55, 2), *rng.uniform(1.0, 2.6, 2)]),
        glows=glows, discs=discs, light=light / np.linalg.norm(light),
    )


def _grid(width: int, height: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Centred coordinates where the shorter picture side spans -1..1."""
    scale = side / max(width, height)
    cols, rows = max(2, round(width * scale)), max(2, round(height * scale))
    unit = min(width, height) / 2
    x = (np.linspace(0.5, width - 0.5, cols) - width / 2) / unit
    y = (np.linspace(0.5, height - 0.5, rows) - height / 2) / unit
    return np.meshgrid(x.astype(np.float32), y.astype(np.float32))


def _backdrop(scene: Scene, x: np.ndarray, y: np.ndarray, phase: float) -> np.ndarray:
    """Domain-warped plasma mapped through the palette, lit and vignetted."""
    ax, ay, fx, fy = scene.warp
    wx = x + ax * np.sin(fy * y + phase + scene.waves[0, 2])
    wy = y + ay * np.sin(fx * x - phase + scene.waves[1, 2])
    field = np.zeros_like(x)
    for kx, ky, start, speed in scene.waves:
        field += np.sin(kx * wx + ky * wy + start + speed * phase)
    field = 0.5 + 0.5 * np.tanh(field * 0.7)  # spread the sum over 0..1
    ramp = scene.palette[:5]
    stops = np.linspace(0.0, 1.0, len(ramp))
    rgb = np.stack([np.interp(field, stops, ramp[:, c]) for c in range(3)], -1)
    ribbon = np.exp(-(((field * 4 + phase / TAU) % 1 - 0.5) * 9) ** 2)
    rgb += 0.18 * ribbon[..., None] * scene.palette[5]
    for gx, gy, radius, strength, dx, dy in scene.glows:
        cx, cy = gx + dx * math.sin(phase), gy + dy * math.cos(phase)
        glow = strength * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / radius**2)
        rgb = 1 - (1 - rgb) * (1 - glow[..., None] * scene.palette[5])
    lit = 0.8 + 0.25 * np.clip(x * scene.light[0] + y * scene.light[1], -1, 1)
    vignette = 1 - 0.35 * np.clip((x * x + y * y) / 2.2, 0, 1)
    return rgb * (lit * vignette)[..., None]


def _upscale(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a small float picture to full size, channel by channel."""
    size, bicubic = (width, height), Image.Resampling.BICUBIC
    planes = [Image.fromarray(rgb[..., c].astype(np.float32), "F") for c in range(3)]
    return np.stack([np.asarray(p.resize(size, bicubic)) for p in planes], -1)


def _add_discs(rgb: np.ndarray, scene: Scene, phase: float) -> None:
    """Screen-blend soft bokeh discs with bright rims, in place."""
    height, width = rgb.shape[:2]
    unit = min(width, height) / 2
    for gx, gy, radius, alpha, drift, index, rim in scene.discs:
        cx = width / 2 + unit * (gx + 0.08 * math.sin(phase + gy * 3))
        cy = height / 2 + unit * (gy - drift * math.sin(phase / 2) * 0.5)
        r = radius * unit
        x0, x1 = max(0, int(cx - r - 2)), min(width, int(cx + r + 3))
        y0, y1 = max(0, int(cy - r - 2)), min(height, int(cy + r + 3))
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2, dtype=np.float32)
        edge = max(1.5, r * 0.08)
        body = np.clip((r - dist) / edge, 0, 1)
        ring = np.exp(-(((dist - r * 0.9) / edge) ** 2)) * rim
        mask = (alpha * (body + ring))[..., None] * scene.palette[int(index)]
        region = rgb[y0:y1, x0:x1]
        region[...] = 1 - (1 - region) * (1 - np.clip(mask, 0, 1))


def _frame(scene: Scene, width: int, height: int, phase: float) -> np.ndarray:
    """One full-size RGB uint8 picture of the scene at an animation phase."""
    x, y = _grid(width, height, FIELD_SIDE)
    rgb = _upscale(_backdrop(scene, x, y, phase), width, height)
    _add_discs(rgb, scene, phase)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def render_image(
    prompt: str, seed: int, width: int, height: int, fmt: str = "png"
) -> bytes:
    """Encode one picture for the prompt and seed as PNG, JPEG or WebP."""
    _check_size(width, height)
    fmt = fmt.lower()
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(IMAGE_FORMATS)}, got {fmt!r}")
    pixels = _frame(_scene(prompt, seed), width, height, 0.0)
    # Level 4 is about twice as fast as the default for ~15% more bytes.
    options = {"compress_level": 4} if fmt == "png" else {"quality": 90}
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, IMAGE_FORMATS[fmt], **options)
    return out.getvalue()


def render_video(
    prompt: str, seed: int, width: int, height: int,
    seconds: float = 2.0, fps: int = 12,
) -> bytes:
    """Encode a seamlessly looping H.264 MP4 of the picture drifting."""
    _check_size(width, height)
    _check_seconds(seconds)
    _check_int("fps", fps, 1, 60)
    if width % 2 or height % 2:
        raise ValueError(f"video sides must be even for yuv420p, got {width}x{height}")
    scene = _scene(prompt, seed)
    frame_count = max(1, round(seconds * fps))
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        # x264 output depends on its thread count, which by default follows
        # the CPU count; one thread gives the same bytes on every machine.
        stream = container.add_stream(
            "libx264", rate=fps,
            options={"preset": "veryfast", "crf": "23", "threads": "1"},
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frame_count):
            pixels = _frame(scene, width, height, TAU * index / frame_count)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


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


def _music(prompt: str, seed: int, seconds: float, rate: int) -> np.ndarray:
    """A soft pad plus an arpeggio cycling through four chords of one key."""
    key_rng, tune_rng = _rng("key", prompt), _rng("tune", prompt, seed)
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


def _echo(signal: np.ndarray, rate: int) -> np.ndarray:
    """Two fading repeats for a sense of space."""
    delay = int(0.19 * rate)
    wet = signal.copy()
    for repeat in (1, 2):
        shift = delay * repeat
        if shift < signal.size:
            wet[shift:] += signal[:-shift] * 0.35**repeat
    return wet


def _fades(size: int, rate: int) -> np.ndarray:
    """A gain curve with a short fade in and a longer fade out."""
    fade_in, fade_out = min(size // 4, rate // 20), min(size // 4, rate * 2 // 5)
    envelope = np.ones(size)
    envelope[:fade_in] = np.linspace(0, 1, fade_in)
    envelope[size - fade_out:] = np.linspace(1, 0, fade_out)
    return envelope


def render_audio(
    prompt: str, seed: int, seconds: float = 3.0, sample_rate: int = 22050
) -> bytes:
    """Encode a short 16-bit mono WAV arpeggio in the prompt's key."""
    _check_seconds(seconds)
    _check_int("sample_rate", sample_rate, 8000, 96000)
    signal = _echo(_music(prompt, seed, seconds, sample_rate), sample_rate)
    signal *= _fades(signal.size, sample_rate)
    peak = np.abs(signal).max() or 1.0
    samples = np.round(signal / peak * 0.8 * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setparams((1, 2, sample_rate, samples.size, "NONE", "not compressed"))
        wav.writeframes(samples.tobytes())
    return out.getvalue()
