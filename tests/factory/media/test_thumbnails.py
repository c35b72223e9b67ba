"""WebP previews for images, videos and audio."""

import io

import av
import numpy as np
import pytest
from PIL import Image

from factory.media.inspect import MediaInfo, probe
from factory.media.thumbnails import WAVE_BACKGROUND, make_thumbnail
from factory.providers.demo_art import render_audio, render_image, render_video


def _thumbnail(data: bytes, size: int = 384) -> Image.Image:
    image = Image.open(io.BytesIO(make_thumbnail(data, probe(data), size)))
    assert image.format == "WEBP"
    return image


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _grey_ramp_video() -> bytes:
    """Ten frames at 10 fps whose grey level is 20 times the frame index."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10, options={"g": "2"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(10):
            pixels = np.full((48, 64, 3), index * 20, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    return out.getvalue()


def test_image_thumbnail_keeps_aspect_within_size():
    assert _thumbnail(render_image("x", 1, 1024, 640)).size == (384, 240)


def test_small_image_is_not_enlarged():
    assert _thumbnail(render_image("x", 1, 100, 50)).size == (100, 50)


def test_custom_size_is_respected():
    assert _thumbnail(render_image("x", 1, 300, 600), size=128).size == (64, 128)


def test_exif_orientation_turns_the_thumbnail_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    data = _encoded(Image.new("RGB", (200, 100), "red"), "JPEG", exif=exif.tobytes())
    assert _thumbnail(data).size == (100, 200)


def test_transparent_png_keeps_its_alpha():
    image = Image.new("RGBA", (80, 40), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 40, 40))
    thumb = _thumbnail(_encoded(image, "PNG"))
    assert thumb.mode == "RGBA"
    assert thumb.getpixel((70, 20))[3] == 0
    assert thumb.getpixel((10, 20))[3] == 255


def test_palette_image_with_transparency_keeps_its_alpha():
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    assert _thumbnail(_encoded(image, "PNG", transparency=0)).mode == "RGBA"


def test_cmyk_jpeg_becomes_rgb():
    data = _encoded(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG")
    thumb = _thumbnail(data)
    assert thumb.mode == "RGB"
    red, green, blue = thumb.getpixel((20, 20))
    assert red > 200 and green < 60 and blue < 60


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    pixels = np.full((32, 32), 32768, np.uint16)
    data = _encoded(Image.fromarray(pixels), "PNG")
    red, green, blue = _thumbnail(data).getpixel((16, 16))
    assert abs(red - 128) <= 3 and red == green == blue


def test_video_poster_is_taken_from_the_middle():
    thumb = _thumbnail(_grey_ramp_video())
    assert thumb.size == (64, 48)
    red, _, _ = thumb.getpixel((32, 24))
    assert abs(red - 100) <= 6  # frame 5 of 10


def test_demo_video_poster_fits_size():
    assert _thumbnail(render_video("x", 1, 512, 256, seconds=1.0)).size == (384, 192)


def test_waveform_is_half_as_high_as_wide_on_a_dark_card():
    thumb = _thumbnail(render_audio("x", 1, seconds=2.0), size=256).convert("RGB")
    assert thumb.size == (256, 128)
    corner = np.array(thumb.getpixel((0, 0)))
    assert np.abs(corner - WAVE_BACKGROUND).max() <= 6
    middle_row = np.asarray(thumb)[64]
    assert middle_row.max() > 150  # bars cross the centre line


def test_unknown_media_type_is_refused():
    info = MediaInfo("document", "application/pdf", "pdf")
    with pytest.raises(ValueError, match="no thumbnail for media type 'document'"):
        make_thumbnail(b"%PDF-1.7", info)


def test_tiny_size_is_refused():
    data = render_image("x", 1, 64, 64)
    with pytest.raises(ValueError, match="thumbnail size must be at least 16, got 8"):
        make_thumbnail(data, probe(data), size=8)
