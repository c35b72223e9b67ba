"""Who may see what and do what, for sidebar links, mounted views and actions.

The role table itself is ``factory.roles``; this module holds the checks the
admin classes share, so each of them stays a one-line ``has_*_permission``.
"""
from functools import wraps
from typing import Any, Callable

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

PLACE = "factory.place_order"
CANCEL = "factory.cancel_order"
RETRY = "factory.retry_item"


def is_superuser(request: HttpRequest) -> bool:
    """Sidebar permission callback: superusers only."""
    return bool(request.user.is_active and request.user.is_superuser)


def _viewer_of(model: str) -> Callable[[HttpRequest], bool]:
    def check(request: HttpRequest) -> bool:
        return request.user.has_perm(f"factory.view_{model}")

    check.__doc__ = f"Sidebar permission callback: who may view {model} rows."
    return check


# Sidebar links show only what the role may open (``UNFOLD["SIDEBAR"]``).
can_view_order = _viewer_of("order")
can_view_orderitem = _viewer_of("orderitem")
can_view_product = _viewer_of("product")
can_view_project = _viewer_of("project")
can_view_tag = _viewer_of("tag")
can_view_mediafile = _viewer_of("mediafile")
can_view_provider = _viewer_of("provider")
can_view_factorymachine = _viewer_of("factorymachine")
can_view_template = _viewer_of("template")
can_view_wildcard = _viewer_of("wildcard")
can_view_spendentry = _viewer_of("spendentry")
can_view_monthlycap = _viewer_of("monthlycap")


def superuser_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a view so only active superusers reach it.

    Anonymous visitors are sent to log in; signed-in people without the
    right get 403, whatever the view would have answered (the queue
    dashboard's JSON included), rather than a login loop.
    """
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), "admin:login")
        if not is_superuser(request):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


class RefuseForbiddenActions:
    """Answer 403 when a bulk action the user may not run is posted.

    Django drops such an action from the choices and answers "No action
    selected"; spending actions say plainly that they were refused instead.
    Nothing runs either way.
    """

    def changelist_view(self, request: HttpRequest, extra_context=None):
        # Both ways Django runs an action: from the list, and from a
        # confirmation page posting back without "index".
        name = request.POST.get("action") if request.method == "POST" else None
        if name and "_save" not in request.POST:
            known = {action_name for _, action_name, _ in self._get_base_actions()}
            if name in known and name not in self.get_actions(request):
                raise PermissionDenied
        return super().changelist_view(request, extra_context)
