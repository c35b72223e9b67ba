"""The demo pictures: a palette and a composition, painted frame by frame.

Everything random is drawn once into a ``Scene`` from generators the caller
seeds, so the same generators always paint the same pixels. A frame is the
scene at an animation phase; phases 0 and 2π give the same picture, which
is what lets a video loop without a seam.
"""
import colorsys
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

FIELD_SIDE = 200  # smooth layers are computed this small, then upscaled
TAU = 2 * math.pi

# Accent hue offsets in turns: analogous, triadic, split-complementary and
# complementary, the schemes that read as harmonious.
ACCENT_OFFSETS = (0.08, 1 / 3, 5 / 12, 0.5)


@dataclass(frozen=True)
class Scene:
    """Everything random about one picture, drawn once from the seed."""

    palette: np.ndarray  # (6, 3) five stops dark to light, then an accent
    waves: np.ndarray  # (4, 4) rows of kx, ky, phase, speed
    warp: np.ndarray  # (4,) warp amounts and frequencies
    glows: np.ndarray  # (n, 6) x, y, radius, strength, drift x, drift y
    discs: np.ndarray  # (n, 7) x, y, radius, alpha, drift, palette index, rim
    light: np.ndarray  # (2,) direction the light falls from


def _palette(rng: np.random.Generator) -> np.ndarray:
    """A hue-shifted ramp of five stops plus one accent."""
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


def draw_scene(
    rng: np.random.Generator, palette_rng: np.random.Generator
) -> Scene:
    """Draw the composition from ``rng``, its colours from ``palette_rng``."""
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
        palette=_palette(palette_rng), waves=waves,
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


def paint_frame(
    scene: Scene, width: int, height: int, phase: float
) -> np.ndarray:
    """One full-size RGB uint8 picture of the scene at an animation phase."""
    x, y = _grid(width, height, FIELD_SIDE)
    rgb = _upscale(_backdrop(scene, x, y, phase), width, height)
    _add_discs(rgb, scene, phase)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
