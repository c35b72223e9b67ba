"""URL routes: the admin is the whole product, plus provider webhooks."""
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from django.views.static import serve
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

from admin_ext.permissions import superuser_required
from factory.views import webhooks

queue_patterns = get_api_urlpatterns() + get_admin_urlpatterns(
    view_wrapper=superuser_required
)

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/queues/", include((queue_patterns, "django_rq"))),
    path("admin/", admin.site.urls),
    path("hooks/fal/", webhooks.fal_webhook, name="webhook-fal"),
    path("hooks/replicate/", webhooks.replicate_webhook, name="webhook-replicate"),
]


@staff_member_required
def serve_media(request: HttpRequest, file_path: str) -> HttpResponse:
    """Products are private: local media is served to signed-in staff only.

    MEDIA_ROOT is read per request, not frozen when the URLs are loaded.
    """
    return serve(request, file_path, document_root=settings.MEDIA_ROOT)


if settings.SERVE_MEDIA:
    urlpatterns.append(
        re_path(rf"^{settings.MEDIA_URL.strip('/')}/(?P<file_path>.*)$", serve_media)
    )
