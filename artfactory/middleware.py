"""Response middleware of the web process: security policy and compression."""
from typing import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.gzip import GZipMiddleware

# What is worth compressing; images, video and archives are compressed already.
COMPRESSIBLE_TYPES = (
    "text/", "application/json", "application/javascript", "application/xml",
    "image/svg+xml",
)


def content_security_policy(path: str) -> str:
    """The policy header's value for a request path, from settings.CSP_POLICY."""
    policy = {name: list(sources) for name, sources in settings.CSP_POLICY.items()}
    if any(path.startswith(prefix) for prefix in settings.CSP_INLINE_SCRIPT_PATHS):
        policy["script-src"].append("'unsafe-inline'")
    return "; ".join(" ".join([name, *sources]) for name, sources in policy.items())


class ContentSecurityPolicyMiddleware:
    """Send the Content-Security-Policy header on every response.

    Django 5.2 has no CSP support of its own; the policy and why each
    source is allowed are in settings (CSP_POLICY).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        header = (
            "Content-Security-Policy-Report-Only"
            if settings.CSP_REPORT_ONLY else "Content-Security-Policy"
        )
        response.headers.setdefault(header, content_security_policy(request.path))
        return response


class TextGZipMiddleware(GZipMiddleware):
    """Django's gzip, for text responses only.

    Pages carry secrets (the CSRF token, session-bound data), so they are
    open to BREACH only if an attacker can also reflect chosen text into the
    same page and watch its size: Django masks the CSRF token anew on every
    response and pads each gzip body with up to 100 random bytes ("Heal the
    Breach"), which defeats that measurement. Media files (images, video)
    and other binary bodies pass through untouched.
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        content_type = response.get("Content-Type", "").lower()
        if not content_type.startswith(COMPRESSIBLE_TYPES):
            return response
        return super().process_response(request, response)
