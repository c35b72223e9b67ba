"""Parameters embedded in produced files and read back."""

import io

import numpy as np
import pytest
from PIL import Image

from factory.media.inspect import probe
from factory.media.metadata import a1111_text, embed_parameters, read_parameters
from factory.providers.demo_art import render_audio, render_image

PARAMS = {
    "prompt": "a snowman ☃ in <fog> & rain",
    "seed": 42,
    "num_inference_steps": 28,
    "guidance_scale": 3.5,
    "image_size": {"width": 64, "height": 48},
    "model": "fal-ai/flux/dev",
}
TEXT = (
    "a snowman ☃ in <fog> & rain\n"
    "Negative prompt: blurry, low quality\n"
    "Steps: 28, CFG scale: 3.5, Seed: 42, Size: 64x48, Model: fal-ai/flux/dev"
)


def _embedded(fmt: str, data: bytes | None = None, params: dict = PARAMS) -> bytes:
    data = data if data is not None else render_image("x", 1, 64, 48, fmt)
    return embed_parameters(data, probe(data), TEXT, params)


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_a1111_text_lists_known_keys_in_a1111_order():
    assert a1111_text(PARAMS["prompt"], "blurry, low quality", PARAMS) == TEXT


def test_a1111_text_skips_missing_keys_and_negative_prompt():
    assert a1111_text("a cat", None, {"steps": 20}) == "a cat\nSteps: 20"
    assert a1111_text("a cat", "", {}) == "a cat"


def test_a1111_text_reads_alternative_key_names():
    params = {"steps": 30, "cfg_scale": 7.0, "sampler": "Euler a", "seed": 0,
              "width": 832, "height": 1216, "model_name": "sdxl"}
    assert a1111_text("p", None, params) == (
        "p\nSteps: 30, Sampler: Euler a, CFG scale: 7.0, Seed: 0, Size: 832x1216, Model: sdxl"
    )


def test_a1111_text_quotes_values_that_would_break_the_list():
    assert a1111_text("p", None, {"model": "civitai:123, v2"}) == 'p\nModel: "civitai:123, v2"'


@pytest.mark.parametrize(
    ("image_size", "size"), [("1024x768", "Size: 1024x768"), ("square_hd", None)]
)
def test_a1111_text_uses_explicit_size_strings_only(image_size, size):
    text = a1111_text("p", None, {"image_size": image_size, "seed": 1})
    assert text == "p\n" + ", ".join(filter(None, ["Seed: 1", size]))


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_parameters_round_trip(fmt):
    assert read_parameters(_embedded(fmt)) == {"parameters": TEXT, "json": PARAMS}


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_embedding_keeps_pixels_and_validity(fmt):
    original = render_image("x", 1, 64, 48, fmt)
    embedded = _embedded(fmt, original)
    assert probe(embedded) == probe(original)
    assert np.array_equal(_pixels(embedded), _pixels(original)) is True


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_embedding_again_replaces_rather_than_duplicates(fmt):
    once = _embedded(fmt)
    twice = _embedded(fmt, once, {**PARAMS, "seed": 43})
    assert read_parameters(twice)["json"]["seed"] == 43
    assert len(twice) == len(once)
    assert twice.count(b"artfactory") == once.count(b"artfactory")


def test_png_uses_tEXt_for_latin1_and_iTXt_for_the_json():
    data = render_image("x", 1, 32, 32)
    embedded = embed_parameters(data, probe(data), "plain text", {"a": 1})
    assert b"tEXtparameters\x00plain text" in embedded
    assert b"iTXtartfactory\x00\x01" in embedded
    with Image.open(io.BytesIO(embedded)) as image:
        assert image.info["parameters"] == "plain text"


def test_jpeg_comment_is_unicode_utf16be_as_a1111_writes():
    with Image.open(io.BytesIO(_embedded("jpeg"))) as image:
        comment = image.getexif().get_ifd(0x8769)[0x9286]
    assert comment == b"UNICODE\x00" + TEXT.encode("utf-16-be")


def test_jpeg_keeps_its_orientation_but_not_the_providers_exif_and_xmp():
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "<script>alert(1)</script>"
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        b"<dc:format>text/html</dc:format>"
        b"</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    out = io.BytesIO()
    Image.new("RGB", (40, 20), "teal").save(out, "JPEG", exif=exif.tobytes(), xmp=xmp)
    embedded = _embedded("jpeg", out.getvalue())
    with Image.open(io.BytesIO(embedded)) as image:
        kept = image.getexif()
        assert kept[0x0112] == 6 and 0x010F not in kept
        assert b"dc:format" not in image.info["xmp"]
    assert b"<script>" not in embedded
    assert read_parameters(embedded) == {"parameters": TEXT, "json": PARAMS}


def test_simple_lossless_webp_with_alpha_becomes_extended_and_keeps_alpha():
    out = io.BytesIO()
    Image.new("RGBA", (20, 10), (255, 0, 0, 128)).save(out, "WEBP", lossless=True)
    embedded = _embedded("webp", out.getvalue())
    assert embedded[12:16] == b"VP8X"
    assert embedded[20] == 0x10 | 0x08 | 0x04  # alpha, EXIF and XMP flags
    with Image.open(io.BytesIO(embedded)) as image:
        assert image.getpixel((5, 5)) == (255, 0, 0, 128)
    assert read_parameters(embedded)["json"] == PARAMS


def test_audio_is_returned_unchanged():
    data = render_audio("x", 1, seconds=0.5)
    assert embed_parameters(data, probe(data), TEXT, PARAMS) == data


def test_reading_a_file_without_parameters_finds_none():
    nothing = {"parameters": None, "json": None}
    assert read_parameters(render_image("x", 1, 32, 32)) == nothing
    assert read_parameters(render_image("x", 1, 32, 32, "jpeg")) == nothing


def test_reading_a_non_image_finds_none():
    assert read_parameters(b"<html></html>") == {"parameters": None, "json": None}


def test_jpeg_json_too_big_for_one_segment_is_left_out_but_text_kept():
    data = render_image("x", 1, 32, 32, "jpeg")
    huge = {"prompt": "word " * 20_000}
    embedded = embed_parameters(data, probe(data), "short text", huge)
    assert read_parameters(embedded) == {"parameters": "short text", "json": None}
    assert probe(embedded).content_type == "image/jpeg"


def test_png_carries_json_of_any_size():
    data = render_image("x", 1, 32, 32)
    huge = {"prompt": "word " * 20_000}
    embedded = embed_parameters(data, probe(data), "short text", huge)
    assert read_parameters(embedded) == {"parameters": "short text", "json": huge}
