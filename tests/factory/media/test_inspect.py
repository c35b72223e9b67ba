"""Recognising media by decoding it, and refusing what does not decode."""

import io
import struct
import zlib

import av
import numpy as np
import pytest
from PIL import Image

from factory.media.inspect import MediaError, MediaInfo, probe
from factory.providers.demo_art import render_audio, render_image, render_video


def _encode_video(container_format: str, codec: str, frames: int = 10) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            pixels = np.full((48, 64, 3), index * 20, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    return out.getvalue()


def _encode_audio(container_format: str, codec: str, rate: int = 44100) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        tone = np.sin(np.arange(rate) * 2 * np.pi * 440 / rate).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(0.3 * tone[None, :], format="fltp", layout="mono")
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@pytest.mark.parametrize(
    ("fmt", "content_type", "extension"),
    [("png", "image/png", "png"), ("jpeg", "image/jpeg", "jpg"), ("webp", "image/webp", "webp")],
)
def test_demo_images_are_recognised(fmt, content_type, extension):
    info = probe(render_image("x", 1, 64, 40, fmt))
    assert info == MediaInfo("image", content_type, extension, 64, 40, None)


def test_animated_gif_is_an_image():
    out = io.BytesIO()
    frames = [Image.new("P", (30, 20), colour) for colour in (1, 2, 3)]
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert probe(out.getvalue()) == MediaInfo("image", "image/gif", "gif", 30, 20, None)


def test_demo_video_is_recognised():
    info = probe(render_video("x", 1, 64, 48, seconds=1.0))
    assert info == MediaInfo("video", "video/mp4", "mp4", 64, 48, 1.0)


@pytest.mark.parametrize(
    ("container_format", "codec", "content_type", "extension"),
    [
        ("webm", "libvpx-vp9", "video/webm", "webm"),
        ("matroska", "libx264", "video/x-matroska", "mkv"),
    ],
)
def test_other_video_containers_are_recognised(container_format, codec, content_type, extension):
    info = probe(_encode_video(container_format, codec))
    assert info == MediaInfo("video", content_type, extension, 64, 48, 1.0)


def test_demo_audio_is_recognised():
    info = probe(render_audio("x", 1, seconds=1.5))
    assert info == MediaInfo("audio", "audio/wav", "wav", None, None, 1.5)


@pytest.mark.parametrize(
    ("container_format", "codec", "content_type", "extension"),
    [
        ("mp3", "libmp3lame", "audio/mpeg", "mp3"),
        ("flac", "flac", "audio/flac", "flac"),
        ("ogg", "libopus", "audio/ogg", "ogg"),
        ("mp4", "aac", "audio/mp4", "m4a"),
    ],
)
def test_other_audio_formats_are_recognised(container_format, codec, content_type, extension):
    rate = 48000 if codec == "libopus" else 44100
    info = probe(_encode_audio(container_format, codec, rate))
    assert info.media_type == "audio"
    assert (info.content_type, info.extension) == (content_type, extension)
    assert (info.width, info.height) == (None, None)
    assert info.duration_seconds == pytest.approx(1.0, abs=0.1)


def test_empty_bytes_are_refused():
    with pytest.raises(MediaError, match="empty file: 0 bytes"):
        probe(b"")


def test_html_is_refused_whatever_it_was_called():
    page = b"<!doctype html><html><body><img src=cat.png></body></html>"
    with pytest.raises(MediaError, match="not a decodable image/video/audio file"):
        probe(page)


def test_playlist_is_refused():
    playlist = (
        b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n"
        b"#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    )
    with pytest.raises(MediaError, match="not a decodable image/video/audio file"):
        probe(playlist)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_png_is_refused(keep):
    data = render_image("x", 1, 128, 128)
    with pytest.raises(MediaError, match="^truncated image"):
        probe(data[: int(len(data) * keep)])


def test_png_cut_inside_iend_is_refused():
    data = render_image("x", 1, 64, 64)
    with pytest.raises(MediaError, match="^truncated image: the PNG has no IEND"):
        probe(data[:-12])


def test_truncated_jpeg_is_refused():
    data = render_image("x", 1, 128, 128, "jpeg")
    with pytest.raises(MediaError, match="^truncated image"):
        probe(data[: len(data) // 2])


def test_png_header_alone_is_not_handed_to_ffmpeg():
    with pytest.raises(MediaError, match="^truncated image: the PNG has no IEND"):
        probe(render_image("x", 1, 64, 64)[:40])


def test_truncated_video_is_refused():
    data = render_video("x", 1, 64, 64, seconds=1.0)
    with pytest.raises(MediaError, match="not a decodable image/video/audio file"):
        probe(data[: len(data) // 2])


def test_wav_without_samples_is_refused():
    header = render_audio("x", 1, seconds=0.01)[:44]
    empty = header[:40] + struct.pack("<I", 0)
    with pytest.raises(MediaError, match="no audio frames"):
        probe(empty)


def test_png_declaring_huge_dimensions_is_a_decompression_bomb():
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 1, 0, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b"")
    )
    with pytest.raises(MediaError, match=r"^decompression bomb: 10000000000 pixels"):
        probe(bomb)


@pytest.mark.parametrize("limit", [3000, 1000])  # Pillow warns above 1x, fails above 2x
def test_image_over_the_pixel_limit_is_a_decompression_bomb(monkeypatch, limit):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(MediaError, match=rf"^decompression bomb: 4096 pixels \(limit {limit}\)"):
        probe(render_image("x", 1, 64, 64))


def test_image_under_a_lowered_pixel_limit_still_passes(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4096)
    assert probe(render_image("x", 1, 64, 64)).width == 64


def test_media_error_is_a_value_error():
    assert issubclass(MediaError, ValueError) is True
