"""S3 media whose signed URLs stay the same for a while, so browsers cache them.

django-storages signs every ``url()`` with the current second, so each page
render hands out new thumbnail URLs and a browser fetches every thumbnail
again. Here a URL is signed as of the start of a fixed time window
(``MEDIA_URL_WINDOW_SECONDS``): every render and every process in the same
window gives the same URL. It stays valid for the window plus
``querystring_expire`` (``AWS_QUERYSTRING_EXPIRE``), so a URL handed out at
the end of a window still works that long. Objects are uploaded with an
immutable Cache-Control (content-hash names never change), which S3 sends
back with each download.

The signing clock is frozen for the signing thread only: botocore reads the
time through ``botocore.auth.get_current_datetime``, which is wrapped once
to honour a per-thread override and is otherwise untouched, so uploads and
other calls keep signing with the real time.
"""
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import botocore.auth
from django.conf import settings
from storages.backends.s3 import S3Storage

# AWS refuses presigned URLs valid for more than seven days.
MAX_PRESIGNED_SECONDS = 7 * 24 * 3600
_clock = threading.local()
_real_now = botocore.auth.get_current_datetime


def _signing_now(remove_tzinfo: bool = True) -> datetime:
    """botocore's clock, unless this thread froze it for a stable signature."""
    frozen = getattr(_clock, "at", None)
    if frozen is None:
        return _real_now(remove_tzinfo)
    return frozen.replace(tzinfo=None) if remove_tzinfo else frozen


botocore.auth.get_current_datetime = _signing_now


@contextmanager
def signing_clock(epoch_seconds: float) -> Iterator[None]:
    """Sign as of ``epoch_seconds`` in this thread for the duration."""
    _clock.at = datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)
    try:
        yield
    finally:
        _clock.at = None


def window_start(now: float, window: int) -> int:
    """The start of the time window ``now`` falls in."""
    return int(now // window) * window


class StableUrlS3Storage(S3Storage):
    """S3Storage whose signed URLs change once per window, not per call.

    Signs with Signature Version 4, whose date the window fixes; the older
    version 2 counts its expiry from the real clock and is refused by newer
    AWS regions anyway.
    """

    def get_default_settings(self) -> dict:
        return {**super().get_default_settings(), "signature_version": "s3v4"}

    def url(self, name, parameters=None, expire=None, http_method=None) -> str:
        if not self.querystring_auth or self.custom_domain:
            return super().url(name, parameters, expire, http_method)
        window = settings.MEDIA_URL_WINDOW_SECONDS
        lifetime = window + (expire if expire is not None else self.querystring_expire)
        with signing_clock(window_start(time.time(), window)):
            return super().url(name, parameters, min(lifetime, MAX_PRESIGNED_SECONDS),
                               http_method)
