"""Local media served like static files: cached for good, no database per file.

Products are private, so media goes to signed-in staff only. Checking that
through the session and user tables costs two queries per file, a hundred
thumbnails a page. Instead each staff page hands out a media pass: a signed,
HttpOnly cookie bound to the session cookie (a hash of its key) and valid
for ``MEDIA_PASS_SECONDS``. A media request checks the pass's signature and
age against the session cookie it arrives with, which needs no database.
Signing out ends the session cookie, and with it the pass. A request
without a valid pass falls back to the session (two queries) and, for
staff, carries a fresh pass back.

Stored names are content hashes (``factory/media/storage.py``), so a name's
bytes never change: such files are sent with ``Cache-Control: private,
max-age=31536000, immutable`` (private: they are not for shared caches) and
an ETag, and a browser asks for each thumbnail once.
"""
import hashlib
import mimetypes
import posixpath
import re
from pathlib import Path

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.urls import reverse
from django.utils._os import safe_join
from django.utils.http import http_date

from factory.media.storage import DIGEST, NAME_PART

MEDIA_PASS_COOKIE = "artfactory_media"
MEDIA_PASS_SALT = "artfactory.media-pass"
MEDIA_PASS_SECONDS = 12 * 3600
IMMUTABLE = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"
# content_path()'s names: kind/ab/cd/<digest>.<extension>
CONTENT_NAME = re.compile(
    rf"{NAME_PART.pattern}/[0-9a-f]{{2}}/[0-9a-f]{{2}}/{DIGEST.pattern}\.{NAME_PART.pattern}"
)


def _session_digest(request: HttpRequest) -> str | None:
    """A hash of the session cookie's key: what a pass is bound to."""
    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    return hashlib.sha256(key.encode()).hexdigest() if key else None


def _pass_age_ok(request: HttpRequest, max_age: int) -> bool:
    """True if the request's pass is genuine, this session's, and younger than max_age."""
    digest = _session_digest(request)
    token = request.COOKIES.get(MEDIA_PASS_COOKIE)
    if not digest or not token:
        return False
    try:
        value = signing.TimestampSigner(salt=MEDIA_PASS_SALT).unsign(token, max_age=max_age)
    except signing.BadSignature:
        return False
    return value == digest


def has_media_pass(request: HttpRequest) -> bool:
    """The check a media request makes instead of reading the session."""
    return _pass_age_ok(request, MEDIA_PASS_SECONDS)


def give_media_pass(request: HttpRequest, response: HttpResponse) -> None:
    """Attach a pass for this request's session cookie, unless a fresh one is there."""
    digest = _session_digest(request)
    if not digest or _pass_age_ok(request, MEDIA_PASS_SECONDS // 2):
        return
    response.set_cookie(
        MEDIA_PASS_COOKIE, signing.TimestampSigner(salt=MEDIA_PASS_SALT).sign(digest),
        max_age=MEDIA_PASS_SECONDS, httponly=True, samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


def may_see_media(user) -> bool:
    """Products are private: staff who may view products (any role)."""
    return bool(user.is_active and user.is_staff
                and user.has_perm("factory.view_product"))


def is_staff_loaded(request: HttpRequest) -> bool:
    """True if this request already read its user and it may see media.

    Never loads the user: a response that did not need it stays query-free.
    """
    user = request.__dict__.get("_cached_user")
    return bool(user is not None and may_see_media(user))


class MediaPassMiddleware:
    """Hand a media pass to staff on the pages they already sign in for."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if is_staff_loaded(request) and not request.path.startswith(settings.MEDIA_URL):
            give_media_pass(request, response)
        return response


def serve_media(request: HttpRequest, file_path: str) -> HttpResponse:
    """One stored file, for staff, with headers that let browsers keep it.

    MEDIA_ROOT is read per request, not frozen when the URLs are loaded.
    """
    passed = has_media_pass(request)
    if not passed and not (request.user.is_active and request.user.is_staff):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"),
                                 REDIRECT_FIELD_NAME)
    if not passed and not may_see_media(request.user):
        raise PermissionDenied
    response = _file_response(request, file_path)
    if not passed:
        give_media_pass(request, response)
    return response


def _file_response(request: HttpRequest, file_path: str) -> HttpResponse:
    """The file under MEDIA_ROOT, or 304 if the browser's copy is current."""
    name = posixpath.normpath(file_path).lstrip("/")
    try:
        full = Path(safe_join(settings.MEDIA_ROOT, name))
    except SuspiciousFileOperation:  # a path outside MEDIA_ROOT
        raise Http404("No such file.") from None
    if not full.is_file():
        raise Http404("No such file.")
    stat = full.stat()
    etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
    cache_control = IMMUTABLE if CONTENT_NAME.fullmatch(name) else REVALIDATE
    if etag in request.headers.get("If-None-Match", ""):
        response: HttpResponse = HttpResponseNotModified()
    else:
        content_type, encoding = mimetypes.guess_type(full.name)
        response = FileResponse(full.open("rb"),
                                content_type=content_type or "application/octet-stream")
        if encoding:
            response.headers["Content-Encoding"] = encoding
        response.headers["Last-Modified"] = http_date(stat.st_mtime)
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = cache_control
    return response
