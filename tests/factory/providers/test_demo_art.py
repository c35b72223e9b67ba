"""The demo provider's offline pictures, clips and sounds."""

import io
import wave

import av
import numpy as np
import pytest
from PIL import Image

from factory.providers.demo_art import render_audio, render_image, render_video

PROMPT = "a lighthouse at dusk"


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_same_inputs_give_identical_image_bytes(fmt):
    first = render_image(PROMPT, 7, 200, 120, fmt)
    assert render_image(PROMPT, 7, 200, 120, fmt) == first


def test_another_seed_or_prompt_gives_another_image():
    base = render_image(PROMPT, 7, 128, 128)
    assert render_image(PROMPT, 8, 128, 128) != base
    assert render_image("a forest at noon", 7, 128, 128) != base


@pytest.mark.parametrize(
    ("fmt", "pillow_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")]
)
@pytest.mark.parametrize("size", [(16, 16), (333, 200), (120, 480)])
def test_image_has_exact_size_and_format(fmt, pillow_format, size):
    image = Image.open(io.BytesIO(render_image(PROMPT, 1, *size, fmt=fmt)))
    assert image.format == pillow_format
    assert image.size == size
    assert image.mode == "RGB"


def test_image_is_not_flat():
    image = Image.open(io.BytesIO(render_image(PROMPT, 3, 256, 256)))
    pixels = np.asarray(image).reshape(-1, 3)
    assert pixels.std(axis=0).min() > 10
    assert len(np.unique(pixels, axis=0)) > 5000


def test_prompt_sets_the_palette():
    def mean_colour(prompt: str) -> np.ndarray:
        data = render_image(prompt, 1, 64, 64)
        return np.asarray(Image.open(io.BytesIO(data)), dtype=float).mean((0, 1))

    assert np.abs(mean_colour("neon city rain") - mean_colour("forest spirit")).max() > 10


@pytest.mark.parametrize(
    ("width", "height", "message"),
    [
        (15, 64, "width must be an integer from 16 to 4096, got 15"),
        (64, 4097, "height must be an integer from 16 to 4096, got 4097"),
        (64.0, 64, "width must be an integer from 16 to 4096, got 64.0"),
    ],
)
def test_image_size_out_of_range_is_refused(width, height, message):
    with pytest.raises(ValueError, match=message):
        render_image(PROMPT, 1, width, height)


def test_unknown_image_format_is_refused():
    with pytest.raises(ValueError, match="fmt must be one of png, jpeg, jpg, webp, got 'gif'"):
        render_image(PROMPT, 1, 64, 64, fmt="gif")


def test_video_is_h264_mp4_with_expected_frames():
    data = render_video(PROMPT, 7, 96, 64, seconds=2.0, fps=12)
    with av.open(io.BytesIO(data)) as container:
        assert container.format.name.startswith("mov,mp4")
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert container.duration / av.time_base == pytest.approx(2.0, abs=0.1)
    assert len(frames) == 24
    assert frames[0].shape == (64, 96, 3)
    assert np.abs(frames[0].astype(int) - frames[12]).mean() > 2  # it moves


def test_same_inputs_give_identical_video_bytes():
    first = render_video(PROMPT, 7, 64, 64, seconds=0.5)
    assert render_video(PROMPT, 7, 64, 64, seconds=0.5) == first
    assert render_video(PROMPT, 8, 64, 64, seconds=0.5) != first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 65}, "video sides must be even for yuv420p, got 65x64"),
        ({"seconds": 0}, "seconds must be > 0 and <= 30, got 0"),
        ({"seconds": 31}, "seconds must be > 0 and <= 30, got 31"),
        ({"fps": 0}, "fps must be an integer from 1 to 60, got 0"),
    ],
)
def test_video_arguments_out_of_range_are_refused(kwargs, message):
    arguments = {"width": 64, "height": 64, "seconds": 1.0, "fps": 12, **kwargs}
    with pytest.raises(ValueError, match=message):
        render_video(PROMPT, 1, **arguments)


def _samples(data: bytes) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getparams(), np.frombuffer(wav.readframes(wav.getnframes()), "<i2")


def test_audio_is_16_bit_mono_wav_of_requested_length():
    params, samples = _samples(render_audio(PROMPT, 7, seconds=3.0, sample_rate=22050))
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 22050)
    assert params.nframes == 66150
    assert samples.size == 66150


def test_audio_fades_in_and_out_and_peaks_below_full_scale():
    _, samples = _samples(render_audio(PROMPT, 7, seconds=2.0))
    assert samples[0] == 0
    assert samples[-1] == 0
    assert np.abs(samples).max() == round(0.8 * 32767)
    assert np.abs(samples[:100]).max() < np.abs(samples[5000:6000]).max()


def test_same_inputs_give_identical_audio_bytes():
    first = render_audio(PROMPT, 7, seconds=1.0)
    assert render_audio(PROMPT, 7, seconds=1.0) == first
    assert render_audio(PROMPT, 8, seconds=1.0) != first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seconds": -1.0}, "seconds must be > 0 and <= 30, got -1.0"),
        ({"seconds": 30.5}, "seconds must be > 0 and <= 30, got 30.5"),
        ({"sample_rate": 4000}, "sample_rate must be an integer from 8000 to 96000, got 4000"),
    ],
)
def test_audio_arguments_out_of_range_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        render_audio(PROMPT, 1, **kwargs)
