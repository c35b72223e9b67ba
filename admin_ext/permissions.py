"""Who may see what, for sidebar links and mounted views."""
from typing import Any, Callable

from django.contrib.auth.decorators import user_passes_test
from django.http import HttpRequest


def is_superuser(request: HttpRequest) -> bool:
    """Sidebar permission callback: superusers only."""
    return bool(request.user.is_active and request.user.is_superuser)


def superuser_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a view so only active superusers reach it; others log in."""
    return user_passes_test(
        lambda user: user.is_active and user.is_superuser, login_url="admin:login"
    )(view)
