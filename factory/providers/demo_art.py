"""Offline, deterministic pictures, clips and sounds for the demo provider.

The same (prompt, seed, size) always gives the same bytes on one platform.
The prompt picks the palette and the musical key; the seed moves the
composition, so a seed sweep looks like variations on one theme. This
module decides what seeds each generator, checks the arguments and encodes;
``demo_pictures`` paints the frames and ``demo_music`` writes the sound.
"""

import hashlib
import io
import wave

import av
import numpy as np
from PIL import Image

from factory.providers.demo_music import add_echo, compose, fades
from factory.providers.demo_pictures import TAU, Scene, draw_scene, paint_frame

MIN_SIDE, MAX_SIDE = 16, 4096
MAX_SECONDS = 30.0
IMAGE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}


def _rng(*parts: object) -> np.random.Generator:
    """A generator seeded by a hash of the given parts."""
    text = "\x1f".join(str(part) for part in parts)
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def _scene(prompt: str, seed: int) -> Scene:
    """Draw the composition for (prompt, seed), in the prompt's palette."""
    return draw_scene(_rng("scene", prompt, seed), _rng("palette", prompt))


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


def render_image(
    prompt: str, seed: int, width: int, height: int, fmt: str = "png"
) -> bytes:
    """Encode one picture for the prompt and seed as PNG, JPEG or WebP."""
    _check_size(width, height)
    fmt = fmt.lower()
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(IMAGE_FORMATS)}, got {fmt!r}")
    pixels = paint_frame(_scene(prompt, seed), width, height, 0.0)
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
            phase = TAU * index / frame_count
            pixels = paint_frame(scene, width, height, phase)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def render_audio(
    prompt: str, seed: int, seconds: float = 3.0, sample_rate: int = 22050
) -> bytes:
    """Encode a short 16-bit mono WAV arpeggio in the prompt's key."""
    _check_seconds(seconds)
    _check_int("sample_rate", sample_rate, 8000, 96000)
    music = compose(_rng("key", prompt), _rng("tune", prompt, seed), seconds,
                    sample_rate)
    signal = add_echo(music, sample_rate)
    signal *= fades(signal.size, sample_rate)
    peak = np.abs(signal).max() or 1.0
    samples = np.round(signal / peak * 0.8 * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setparams((1, 2, sample_rate, samples.size, "NONE", "not compressed"))
        wav.writeframes(samples.tobytes())
    return out.getvalue()
