"""URL routes: the admin is the whole product, plus provider webhooks."""
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, include, path, re_path
from django.views.generic import RedirectView
from django.views.static import serve
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

from admin_ext.permissions import superuser_required
from factory.views import webhooks

# The queues show worker ids and the Redis address: superusers only, the
# JSON statistics too (django-rq would answer them to any staff member).
queue_patterns = [
    URLPattern(pattern.pattern, superuser_required(pattern.callback),
               pattern.default_args, pattern.name)
    for pattern in get_api_urlpatterns()
] + get_admin_urlpatterns(view_wrapper=superuser_required)

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/queues/", include((queue_patterns, "django_rq"))),
    path("admin/", admin.site.urls),
    path("hooks/fal/", webhooks.fal_webhook, name="webhook-fal"),
    path("hooks/replicate/", webhooks.replicate_webhook, name="webhook-replicate"),
]


@staff_member_required
def serve_media(request: HttpRequest, file_path: str) -> HttpResponse:
    """Products are private: local media is served to staff who may view
    products (any role), and to no one else.

    MEDIA_ROOT is read per request, not frozen when the URLs are loaded.
    """
    if not request.user.has_perm("factory.view_product"):
        raise PermissionDenied
    return serve(request, file_path, document_root=settings.MEDIA_ROOT)


if settings.SERVE_MEDIA:
    urlpatterns.append(
        re_path(rf"^{settings.MEDIA_URL.strip('/')}/(?P<file_path>.*)$", serve_media)
    )
