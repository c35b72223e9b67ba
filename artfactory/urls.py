"""URL routes: the admin is the whole product."""
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from django.views.static import serve
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

from admin_ext.permissions import superuser_required

queue_patterns = get_api_urlpatterns() + get_admin_urlpatterns(
    view_wrapper=superuser_required
)

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/queues/", include((queue_patterns, "django_rq"))),
    path("admin/", admin.site.urls),
]
if settings.SERVE_MEDIA:
    # Products are private: local media is served to signed-in staff only.
    urlpatterns.append(
        re_path(
            rf"^{settings.MEDIA_URL.strip('/')}/(?P<path>.*)$",
            staff_member_required(serve),
            {"document_root": settings.MEDIA_ROOT},
        )
    )
