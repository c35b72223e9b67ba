"""URL routes: the admin is the whole product, plus provider webhooks."""
from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, include, path, re_path
from django.views.generic import RedirectView
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

from admin_ext.permissions import superuser_required
from factory.views import webhooks
from factory.views.media import serve_media

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


if settings.SERVE_MEDIA:
    urlpatterns.append(
        re_path(rf"^{settings.MEDIA_URL.strip('/')}/(?P<file_path>.*)$", serve_media)
    )
