"""Small WebP previews: image thumbnails, video posters, audio waveforms."""

import io

import av
import numpy as np
from PIL import Image, ImageDraw, ImageOps

from factory.media.inspect import (
    MediaError,
    MediaInfo,
    open_container,
    open_image,
    video_stream,
)

WEBP_QUALITY = 82
SUPERSAMPLE = 3  # waveform bars are drawn larger, then shrunk to antialias
WAVE_BACKGROUND = (17, 19, 31)
WAVE_LOW, WAVE_HIGH = (94, 234, 212), (167, 139, 250)  # teal to violet
WAVE_RATE = 8000  # plenty for a picture of loudness
POSTER_SEARCH_FRAMES = 300  # bounds decoding past a distant keyframe


def make_thumbnail(data: bytes, info: MediaInfo, size: int = 384) -> bytes:
    """A WebP preview no larger than ``size`` for a file ``probe`` accepted.

    Raises MediaError when the file stops decoding part-way.
    """
    if size < 16:
        raise ValueError(f"thumbnail size must be at least 16, got {size}")
    makers = {"image": _image_preview, "video": _video_poster, "audio": _waveform}
    if info.media_type not in makers:
        raise ValueError(f"no thumbnail for media type {info.media_type!r}")
    try:
        preview = makers[info.media_type](data, size)
    except (av.FFmpegError, OSError, SyntaxError) as exc:
        raise MediaError(f"cannot preview this {info.media_type}: {exc}") from exc
    out = io.BytesIO()
    preview.save(out, "WEBP", quality=WEBP_QUALITY, method=4)
    return out.getvalue()


def _image_preview(data: bytes, size: int) -> Image.Image:
    """The first frame, upright, in RGB(A), fitted inside size x size."""
    with open_image(data) as image:
        image.draft("RGB", (size, size))  # JPEG decodes at a reduced scale
        image = ImageOps.exif_transpose(image)
        image = _displayable(image)
    image.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image


def _displayable(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB, or RGBA when it carries transparency."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float32)
        wide = image.mode.startswith("I;16") or pixels.max() > 255
        top = 65535.0 if wide and image.mode != "F" else max(pixels.max(), 1e-6)
        image = Image.fromarray((pixels / top * 255).clip(0, 255).astype(np.uint8))
    if image.mode == "CMYK":
        return image.convert("RGB")
    transparent = "A" in image.getbands() or "transparency" in image.info
    return image.convert("RGBA" if transparent else "RGB")


def _video_poster(data: bytes, size: int) -> Image.Image:
    """A frame from the middle of the video, fitted inside size x size."""
    with open_container(data) as container:
        stream = video_stream(container)
        if stream is None:
            raise MediaError("no video stream to make a poster from")
        frame = _middle_frame(container, stream)
        image = frame.to_image()
        rotation = getattr(frame, "rotation", 0)  # phone videos store a turn
    if rotation:
        image = image.rotate(rotation, expand=True)
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    return image


def _middle_frame(
    container: av.container.InputContainer, stream: av.VideoStream
) -> av.VideoFrame:
    """The frame near mid-duration, or the first frame if seeking fails."""
    if container.duration and stream.time_base:
        target = int(container.duration / av.time_base / 2 / stream.time_base)
        try:
            container.seek(target, stream=stream, backward=True)
            return _frame_at(container, stream, target)
        except (av.FFmpegError, MediaError):
            container.seek(0, stream=stream)  # unseekable: decode from start
    return _frame_at(container, stream, None)


def _frame_at(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    target: int | None,
) -> av.VideoFrame:
    """Decode on from the keyframe until ``target`` pts, within a bound."""
    frame = None
    for count, frame in enumerate(container.decode(stream)):
        reached = target is None or frame.pts is None or frame.pts >= target
        if reached or count >= POSTER_SEARCH_FRAMES:
            return frame
    if frame is None:
        raise MediaError("video has no decodable frames")
    return frame


def _waveform(data: bytes, size: int) -> Image.Image:
    """Rounded, mirrored loudness bars on a dark card, size x size // 2."""
    levels = _loudness(_mono_samples(data), bars=max(8, size // 6))
    width, height = size * SUPERSAMPLE, size // 2 * SUPERSAMPLE
    card = Image.new("RGB", (width, height), WAVE_BACKGROUND)
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    pitch = width / len(levels)
    bar = max(SUPERSAMPLE, int(pitch * 0.6))
    middle, reach = height / 2, height * 0.42
    for index, level in enumerate(levels):
        half = max(bar / 2, level * reach)
        left = index * pitch + (pitch - bar) / 2
        draw.rounded_rectangle(
            (left, middle - half, left + bar, middle + half), radius=bar / 2, fill=255
        )
    card.paste(_gradient(width, height), mask=mask)
    return card.resize((size, size // 2), Image.Resampling.LANCZOS)


def _mono_samples(data: bytes) -> np.ndarray:
    """All audio samples as one float32 mono channel at WAVE_RATE."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=WAVE_RATE)
    chunks = []
    with open_container(data) as container:
        if not container.streams.audio:
            raise MediaError("no audio stream to draw a waveform from")
        for frame in container.decode(container.streams.audio[0]):
            chunks.extend(f.to_ndarray().ravel() for f in resampler.resample(frame))
    chunks.extend(f.to_ndarray().ravel() for f in resampler.resample(None))
    return np.concatenate(chunks) if chunks else np.zeros(1, np.float32)


def _loudness(samples: np.ndarray, bars: int) -> np.ndarray:
    """Per-bar RMS scaled so the loudest bar is 1, with a gentle curve."""
    edges = np.linspace(0, samples.size, bars + 1).astype(int)
    rms = np.array([
        np.sqrt(np.mean(samples[a:b] ** 2)) if b > a else 0.0
        for a, b in zip(edges[:-1], edges[1:])
    ])
    peak = rms.max()
    # A mild power curve keeps quiet passages visible but loud beats distinct.
    return (rms / peak) ** 0.7 if peak > 0 else rms


def _gradient(width: int, height: int) -> Image.Image:
    """A left-to-right blend from WAVE_LOW to WAVE_HIGH."""
    mix = np.linspace(0.0, 1.0, width)[None, :, None]
    row = (1 - mix) * np.array(WAVE_LOW) + mix * np.array(WAVE_HIGH)
    return Image.fromarray(np.repeat(row, height, 0).astype(np.uint8), "RGB")
