"""No key or secret ever leaves the settings: planted canaries are looked for
in logs, queued jobs, stored errors, every table, admin pages and exports."""
import logging
import re
import sys

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib import admin
from django.core import serializers
from django.db import connection
from django.test import Client
from django.urls import reverse

from factory.models import FactoryMachine, ItemStatus, Order, OrderItem, Provider
from factory.ordering import place_order
from tests.fakes.base import Fault
from tests.fakes.civitai import FakeCivitai
from tests.fakes.fal import FakeFal
from tests.fakes.replicate import FakeReplicate

CANARIES = {
    "FAL_KEY": "canary-fal-4c1d7e0b:9f3a6c2e51d84b7a",
    "REPLICATE_API_TOKEN": "r8_canaryReplicate3e9b51c07d2f48a6",
    "CIVITAI_API_TOKEN": "canary-civitai-8b2f6d1e3a5c4097",
    "SECRET_KEY": "canary-secret-key-6f0e2d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e",
    "AWS_SECRET_ACCESS_KEY": "canaryAwsSecret/7Hq2Lm9Xw4Rt6Zp1Vb8Nc3Kd5",
    "REPLICATE_WEBHOOK_SECRET": "whsec_Y2FuYXJ5LXJlcGxpY2F0ZS13ZWJob29r",
    "DATABASE_PASSWORD": "canary-db-password-2d7f9b4e1c",
}
# Any part of a canary long enough to mean something.
FRAGMENT = re.compile("|".join(re.escape(value[-16:]) for value in CANARIES.values()))


def leaks(text: str) -> list[str]:
    return FRAGMENT.findall(text)


@pytest.fixture
def planted(settings, monkeypatch):
    """Every secret set, in settings and in the environment."""
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
        setattr(settings, name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIACANARYKEYID00000")
    monkeypatch.setenv(
        "DATABASE_URL",
        f"postgres://factory:{CANARIES['DATABASE_PASSWORD']}@db.internal:5432/factory",
    )
    monkeypatch.setitem(connection.settings_dict, "PASSWORD", CANARIES["DATABASE_PASSWORD"])
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return CANARIES


@pytest.fixture
def providers(planted, settings):
    """Fake fal, Replicate and Civitai that know only the canary keys."""
    fal = FakeFal(key=planted["FAL_KEY"]).start()
    replicate = FakeReplicate(token=planted["REPLICATE_API_TOKEN"]).start()
    civitai = FakeCivitai(token=planted["CIVITAI_API_TOKEN"]).start()
    settings.FAL_QUEUE_URL, settings.FAL_API_URL = fal.url + "/", fal.url
    settings.REPLICATE_BASE_URL = replicate.url
    settings.CIVITAI_BASE_URL = civitai.url
    settings.DOWNLOAD_ALLOW_HTTP = True
    settings.DOWNLOAD_ALLOWED_PRIVATE_HOSTS = [
        fake.url.removeprefix("http://") for fake in (fal, replicate, civitai)
    ]
    yield {"fal": fal, "replicate": replicate, "civitai": civitai}
    for fake in (fal, replicate, civitai):
        fake.stop()


def _echo(key: str) -> str:
    """What a careless provider answers: the caller's own key."""
    return f"key {key} is not allowed here (Authorization: Bearer {key})"


def _place(slug: str, user, runs: int) -> Order:
    machine = FactoryMachine.objects.get(slug=slug)
    order = Order.objects.create(
        title=f"Canary {slug}", machine=machine, prompt="a lighthouse at dawn",
        base_parameters={}, runs=runs, created_by=user,
    )
    place_order(order)
    return order


def _redis_text(client: redis.Redis) -> str:
    """Every key and value in the test Redis database, as one text."""
    parts = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        parts.append(repr(key))
        if kind == "string":
            parts.append(repr(client.get(key)))
        elif kind == "hash":
            parts.append(repr(client.hgetall(key)))
        elif kind == "list":
            parts.append(repr(client.lrange(key, 0, -1)))
        elif kind == "set":
            parts.append(repr(client.smembers(key)))
        elif kind == "zset":
            parts.append(repr(client.zrange(key, 0, -1, withscores=True)))
        elif kind == "stream":
            parts.append(repr(client.xrange(key)))
    return "\n".join(parts)


def _database_text() -> str:
    """Every row of every model, serialized."""
    from django.apps import apps

    return "\n".join(
        serializers.serialize("json", model._default_manager.all())
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    )


def _admin_pages(superuser) -> dict[str, str]:
    """What a superuser's browser receives from the pages about keys and the system."""
    client = Client()
    client.force_login(superuser)
    urls = [
        "/admin/", reverse("admin:factory_provider_changelist"),
        reverse("admin:factory_factorymachine_changelist"),
        reverse("admin:factory_orderitem_changelist"),
        reverse("admin:factory_order_changelist"),
        reverse("admin:factory_order_add"),
        reverse("admin:auth_user_changelist"), reverse("admin:auth_group_changelist"),
        reverse("django_rq:home"),
    ]
    urls += [reverse("admin:factory_provider_change", args=[p.pk])
             for p in Provider.objects.all()]
    urls += [reverse("admin:factory_orderitem_change", args=[i.pk])
             for i in OrderItem.objects.all()]
    urls += [reverse("admin:factory_order_change", args=[o.pk]) for o in Order.objects.all()]
    urls += [reverse("admin:factory_factorymachine_change", args=[m.pk])
             for m in FactoryMachine.objects.exclude(provider__slug="demo")[:4]]
    for index, _queue in enumerate(django_settings.RQ_QUEUES):
        for name in ("jobs", "finished_jobs", "failed_jobs", "scheduled_jobs",
                     "started_jobs", "deferred_jobs", "workers", "queue_details"):
            urls.append(reverse(f"django_rq:{name}", args=[index]))
    pages = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        pages[url] = response.content.decode()
    pages.update(_job_pages(client))
    return pages


def _job_pages(client: Client) -> dict[str, str]:
    """django-rq's page of every job still in Redis (its arguments, its result)."""
    import django_rq

    pages = {}
    for index, name in enumerate(django_settings.RQ_QUEUES):
        queue = django_rq.get_queue(name)
        registries = [queue.finished_job_registry, queue.failed_job_registry]
        job_ids = set(queue.job_ids)
        for registry in registries:
            job_ids |= set(registry.get_job_ids())
        for job_id in job_ids:
            url = reverse("django_rq:job_detail", args=[index, job_id])
            response = client.get(url)
            if response.status_code == 200:
                pages[url] = response.content.decode()
    return pages


def _exports(superuser) -> dict[str, str]:
    """Every import-export resource of the admin, exported."""
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = superuser
    exported = {}
    for model, model_admin in admin.site._registry.items():
        if not hasattr(model_admin, "get_export_resource_classes"):
            continue
        for resource_class in model_admin.get_export_resource_classes(request):
            dataset = resource_class().export(model._default_manager.all())
            exported[f"{model.__name__}/{resource_class.__name__}"] = dataset.csv
    return exported


@pytest.mark.django_db
def test_planted_secrets_appear_nowhere(
    planted, providers, catalog, lead, superuser, redis_db, caplog, work_queues,
    django_capture_on_commit_callbacks,
):
    caplog.set_level(logging.DEBUG)
    # Each provider refuses the first submit, echoing the caller's key back.
    providers["fal"].faults.push("submit", Fault("status", 403, {"detail": _echo(planted["FAL_KEY"])}))
    providers["replicate"].faults.push("create", Fault(
        "status", 422, {"title": "Invalid", "status": 422,
                        "detail": _echo(planted["REPLICATE_API_TOKEN"])}))
    providers["civitai"].faults.push("submit", Fault(
        "status", 400, {"title": "Bad request", "status": 400,
                        "detail": _echo(planted["CIVITAI_API_TOKEN"])}))

    with django_capture_on_commit_callbacks(execute=True):
        orders = [_place(slug, lead, runs=2) for slug in (
            "fal-flux-schnell", "replicate-flux-schnell", "civitai-sdxl-1-0", "demo-image")]
    queued = _redis_text(redis_db)
    assert "submit_item" in queued  # the jobs are there to be read
    work_queues()

    items = OrderItem.objects.filter(order__in=orders)
    assert items.filter(status=ItemStatus.FAILED).count() == 3
    assert items.filter(status=ItemStatus.COMPLETED).count() == 5
    errors = "\n".join(items.values_list("last_error", flat=True))
    assert errors.count("***") >= 3, errors  # the echoed keys, masked
    pages = _admin_pages(superuser)
    places = {
        "queued jobs": queued,
        "Redis after the work": _redis_text(redis_db),
        "last errors": errors,
        "the database": _database_text(),
        "logs": caplog.text,
        **{f"page {url}": html for url, html in pages.items()},
        **{f"export {name}": text for name, text in _exports(superuser).items()},
    }
    found = {place: leaks(text) for place, text in places.items() if leaks(text)}
    assert found == {}


def test_log_lines_and_tracebacks_are_masked(planted):
    from artfactory.secrets import MaskingFormatter

    try:
        raise RuntimeError(f"connect failed for {planted['DATABASE_PASSWORD']}")
    except RuntimeError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "key %s rejected", (planted["FAL_KEY"],),
            sys.exc_info(),
        )
    line = MaskingFormatter().format(record)
    assert "key *** rejected" in line
    assert "connect failed for ***" in line
    assert leaks(line) == []
