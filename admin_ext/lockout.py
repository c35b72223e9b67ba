"""The page someone locked out of signing in sees: when to try again.

Axes locks one username from one address (``AXES_LOCKOUT_PARAMETERS``), so a
colleague's typos behind the same office address lock no one else. The lock
ends a cool-off after the last failure, which is the time the page names.
"""
from datetime import datetime
from typing import Any

from axes.helpers import get_client_ip_address, get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone


def locked_until(
    request: HttpRequest, username: str, ip_address: str | None
) -> datetime | None:
    """When the lock on ``username`` from ``ip_address`` lifts, if it does."""
    cool_off = get_cool_off(request)
    if cool_off is None:
        return None
    last = (AccessAttempt.objects.filter(username=username, ip_address=ip_address)
            .order_by("-attempt_time").values_list("attempt_time", flat=True).first())
    return (last or timezone.now()) + cool_off


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: the login page's look, saying until when."""
    username = get_client_username(request, credentials) or ""
    ip_address = getattr(request, "axes_ip_address", None) or get_client_ip_address(request)
    context = {
        **admin.site.each_context(request),
        "title": "Signing in is paused",
        "username": username,
        "until": locked_until(request, username, ip_address),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "login_url": request.path,
    }
    # Rendered now: axes' middleware hands the response straight back.
    return render(request, "admin_ext/lockout.html", context,
                  status=settings.AXES_HTTP_RESPONSE_CODE)
