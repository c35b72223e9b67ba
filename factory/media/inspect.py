"""Identify a media file by decoding it, never by trusting its name."""

import io
import re
import struct
import warnings
import zlib
from dataclasses import dataclass

import av
from PIL import Image, UnidentifiedImageError

# Pillow plugins tried; others (EPS, PSD, ICO…) are never opened.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
IMAGE_TYPES = {
    "PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"),
    "MPO": ("image/jpeg", "jpg"), "WEBP": ("image/webp", "webp"),
    "GIF": ("image/gif", "gif"), "BMP": ("image/bmp", "bmp"),
    "TIFF": ("image/tiff", "tiff"), "AVIF": ("image/avif", "avif"),
}
# FFmpeg demuxers allowed to read a file; playlists and image pipes are not.
DEMUXERS = "mov,matroska,ogg,wav,mp3,flac,aac"
AV_TYPES = {
    ("video", "mp4"): ("video/mp4", "mp4"),
    ("video", "quicktime"): ("video/quicktime", "mov"),
    ("video", "webm"): ("video/webm", "webm"),
    ("video", "matroska"): ("video/x-matroska", "mkv"),
    ("video", "ogg"): ("video/ogg", "ogv"),
    ("audio", "mp4"): ("audio/mp4", "m4a"),
    ("audio", "webm"): ("audio/webm", "webm"),
    ("audio", "matroska"): ("audio/x-matroska", "mka"),
    ("audio", "ogg"): ("audio/ogg", "ogg"),
    ("audio", "wav"): ("audio/wav", "wav"),
    ("audio", "mp3"): ("audio/mpeg", "mp3"),
    ("audio", "flac"): ("audio/flac", "flac"),
    ("audio", "aac"): ("audio/aac", "aac"),
}
NOT_MEDIA = "not a decodable image/video/audio file"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Every content type a stored file can have, as decoding names them.
STORED_TYPES = frozenset(
    content_type for content_type, _ in (*IMAGE_TYPES.values(), *AV_TYPES.values()))


class MediaError(ValueError):
    """The bytes are not a safe, complete image, video or audio file."""


@dataclass(frozen=True)
class MediaInfo:
    """What decoding a file revealed about it."""

    media_type: str  # "image", "video" or "audio"
    content_type: str
    extension: str  # without the dot
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None


def probe(data: bytes) -> MediaInfo:
    """Decode ``data`` enough to prove what it is; raise MediaError if not."""
    if not data:
        raise MediaError("empty file: 0 bytes")
    info = _probe_image(data)
    return info if info is not None else _probe_av(data)


def open_image(data: bytes) -> Image.Image:
    """Open an image of an allowed format, treating bomb warnings as errors."""
    Image.init()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise _bomb_error(exc) from exc
    pixels = image.width * image.height
    # The warnings filter is process-wide and racy under threads; recheck.
    if Image.MAX_IMAGE_PIXELS and pixels > Image.MAX_IMAGE_PIXELS:
        raise MediaError(
            f"decompression bomb: {pixels} pixels"
            f" (limit {Image.MAX_IMAGE_PIXELS})"
        )
    return image


def _bomb_error(exc: Exception) -> MediaError:
    """Restate Pillow's bomb warning or error with its pixel count."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = found.group(1) if found else "too many"
    return MediaError(
        f"decompression bomb: {pixels} pixels (limit {Image.MAX_IMAGE_PIXELS})"
    )


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Each PNG chunk's type and raw bytes, up to IEND, CRCs checked.

    Bytes after IEND are not part of the picture and are not returned; a
    chunk that runs past the end or fails its CRC is named precisely.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise MediaError("corrupt PNG: missing PNG signature")
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        end = offset + 12 + length
        name = kind.decode("latin-1")
        if end > len(data):
            raise MediaError(f"truncated image: PNG chunk {name!r} at byte "
                             f"{offset} runs past the end of the file")
        (stored,) = struct.unpack(">I", data[end - 4:end])
        computed = zlib.crc32(data[offset + 4:end - 4])
        if stored != computed:
            raise MediaError(
                f"corrupt PNG: chunk {name!r} at byte {offset} has a bad CRC "
                f"(stored {stored:08x}, computed {computed:08x})")
        chunks.append((kind, data[offset:end]))
        offset = end
        if kind == b"IEND":
            return chunks
    raise MediaError("truncated image: the PNG has no IEND chunk")


def _probe_image(data: bytes) -> MediaInfo | None:
    """Image facts after verifying and fully decoding; None if not an image."""
    if data.startswith(PNG_SIGNATURE):
        png_chunks(data)  # Pillow's own messages do not say which chunk
    try:
        open_image(data).verify()  # chunk structure and checksums
        image = open_image(data)
    except UnidentifiedImageError:
        return None
    except (OSError, SyntaxError, ValueError) as exc:
        raise _image_error(exc) from exc
    try:
        with image:
            image.load()
            if getattr(image, "n_frames", 1) > 1:  # later frames can be cut
                image.seek(image.n_frames - 1)
                image.load()
            content_type, extension = IMAGE_TYPES[image.format]
            return MediaInfo("image", content_type, extension, *image.size)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _image_error(exc) from exc


def _image_error(exc: Exception) -> MediaError:
    """Name why a recognised image failed to decode."""
    if isinstance(exc, MediaError):
        return exc
    if "truncat" in str(exc).lower() or isinstance(exc, EOFError):
        return MediaError(f"truncated image: {exc}")
    return MediaError(f"corrupt image: {exc}")


def open_container(data: bytes) -> av.container.InputContainer:
    """Open audio or video with only the allowed FFmpeg demuxers."""
    try:
        return av.open(
            io.BytesIO(data), "r",
            container_options={"format_whitelist": DEMUXERS},
        )
    except av.FFmpegError as exc:
        raise MediaError(NOT_MEDIA) from exc


def video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The first real video stream, skipping cover art in audio files."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _probe_av(data: bytes) -> MediaInfo:
    """Video or audio facts after decoding one frame of the main stream."""
    with open_container(data) as container:
        stream = video_stream(container)
        if stream is None and not container.streams.audio:
            raise MediaError(NOT_MEDIA)
        media_type = "video" if stream is not None else "audio"
        stream = stream or container.streams.audio[0]
        try:
            frame = next(container.decode(stream), None)
        except av.FFmpegError as exc:
            raise MediaError(f"{NOT_MEDIA}: {media_type} does not decode") from exc
        if frame is None:
            raise MediaError(f"{NOT_MEDIA}: no {media_type} frames")
        kind = _container_kind(container.format.name, data)
        if (media_type, kind) not in AV_TYPES:
            raise MediaError(f"unsupported {media_type} container: {kind}")
        content_type, extension = AV_TYPES[(media_type, kind)]
        size = (frame.width, frame.height) if media_type == "video" else (None, None)
        return MediaInfo(
            media_type, content_type, extension, *size,
            duration_seconds=_duration(container, stream),
        )


def _container_kind(demuxer: str, data: bytes) -> str:
    """Tell apart the files that one FFmpeg demuxer reads."""
    if demuxer.startswith("mov"):
        return "quicktime" if data[8:12] == b"qt  " else "mp4"
    if demuxer.startswith("matroska"):
        return "webm" if b"webm" in data[:64] else "matroska"
    return demuxer


def _duration(
    container: av.container.InputContainer, stream: av.stream.Stream
) -> float | None:
    """Seconds from the container, else the stream, else unknown."""
    if container.duration is not None:
        return round(container.duration / av.time_base, 3)
    if stream.duration is not None and stream.time_base is not None:
        return round(float(stream.duration * stream.time_base), 3)
    return None
