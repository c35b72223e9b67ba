"""Every door checks its role: the matrix is built from the URL configuration
and every registered action, so a new view or action cannot slip past it.

Each role (anonymous, staff without a role, viewer, operator, lead,
superuser) asks every URL and is offered every action; what it gets is
compared with the tables below. A URL or action missing from them fails
the test, asking for a row.
"""
import re

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from factory.models import (
    ItemStatus, MediaFile, MonthlyCap, Order, OrderItem, OrderStatus, Product,
    Project, Provider, SpendEntry, Tag, Template, Wildcard,
)

ANONYMOUS, NO_ROLE, VIEWER, OPERATOR, LEAD, SUPERUSER = range(6)
ROLES = ["anonymous", "staff without role", "viewer", "operator", "lead", "superuser"]
NOBODY = 6          # refused to everyone, superusers too
PUBLIC = -1         # its own checks (provider signatures, the login page)
STAFF = NO_ROLE     # any signed-in staff member; the page shows nothing else

# Model admin pages: (list/change/history, add, delete) per model.
MODEL_PAGES = {
    "factory_provider": (VIEWER, LEAD, LEAD),
    "factory_factorymachine": (VIEWER, LEAD, LEAD),
    "factory_template": (VIEWER, OPERATOR, OPERATOR),
    "factory_wildcard": (VIEWER, OPERATOR, OPERATOR),
    "factory_product": (VIEWER, NOBODY, LEAD),
    "factory_mediafile": (VIEWER, NOBODY, SUPERUSER),
    "factory_order": (VIEWER, OPERATOR, OPERATOR),   # drafts only are deleted
    "factory_orderitem": (VIEWER, NOBODY, SUPERUSER),
    "factory_project": (VIEWER, LEAD, LEAD),
    "factory_tag": (VIEWER, OPERATOR, LEAD),
    "factory_spendentry": (VIEWER, NOBODY, NOBODY),   # append-only, read-only
    "factory_monthlycap": (VIEWER, LEAD, NOBODY),     # one row, kept; a lead edits it
    "auth_user": (SUPERUSER, SUPERUSER, SUPERUSER),
    "auth_group": (SUPERUSER, SUPERUSER, SUPERUSER),
    "axes_accessattempt": (SUPERUSER, NOBODY, SUPERUSER),
    "axes_accesslog": (SUPERUSER, NOBODY, SUPERUSER),
    "axes_accessfailurelog": (SUPERUSER, NOBODY, SUPERUSER),
}

QUEUE_VIEWS = [
    "home", "home_json", "jobs", "queue_details", "finished_jobs", "failed_jobs",
    "delete_failed_jobs", "scheduled_jobs", "started_jobs", "deferred_jobs", "clear",
    "requeue_all", "job_detail", "result_detail", "delete_job", "requeue_job",
    "enqueue_job", "stop_job", "confirm_action", "actions", "workers",
    "worker_details", "scheduler_jobs", "cron_scheduler_detail", "cron_job_detail",
]

# Every URL by name (unnamed ones by route) -> the least role it admits.
URLS: dict[str, int] = {
    "": PUBLIC,                                   # redirects to the admin
    "admin:login": PUBLIC,
    "admin:logout": PUBLIC,
    "webhook-fal": PUBLIC,
    "webhook-replicate": PUBLIC,
    "admin:index": STAFF,                         # "no role yet" without one
    "admin:password_change": STAFF,
    "admin:password_change_done": STAFF,
    "admin:jsi18n": STAFF,
    "admin:view_on_site": STAFF,
    "admin:search": STAFF,                        # finds only what one may view
    "admin/(?P<url>.*)$": STAFF,                  # not found, once signed in
    "admin:app_list": VIEWER,
    "admin:autocomplete": VIEWER,
    "^media/(?P<file_path>.*)$": VIEWER,          # downloads
    "admin:factory_order_progress_list": VIEWER,
    "admin:factory_order_progress_dashboard": VIEWER,
    "admin:factory_order_progress": VIEWER,
    "admin:factory_order_star": OPERATOR,
    "admin:factory_order_place": OPERATOR,
    "admin:factory_order_preview": OPERATOR,
    "admin:factory_order_preview_change": OPERATOR,
    "admin:factory_order_switch_machine": OPERATOR,
    "admin:factory_order_switch_machine_change": OPERATOR,
    "admin:factory_order_place_detail": OPERATOR,
    "admin:factory_order_order_again_detail": OPERATOR,
    "admin:factory_order_other_machine_detail": OPERATOR,
    "admin:factory_order_save_template_detail": OPERATOR,
    "admin:factory_order_cancel_detail": OPERATOR,
    "admin:factory_product_favorite": OPERATOR,
    "admin:factory_product_rating": OPERATOR,
    "admin:factory_product_vary_seed_detail": OPERATOR,
    "admin:factory_product_order_again_detail": OPERATOR,
    "admin:factory_product_other_machine_detail": OPERATOR,
    "admin:factory_template_new_order_detail": OPERATOR,
    "admin:factory_wildcard_import_list": OPERATOR,
    "admin:factory_product_panel": VIEWER,
    "admin:factory_product_tags": OPERATOR,
    "admin:factory_product_project": OPERATOR,
    "admin:factory_product_notes": OPERATOR,
    "admin:factory_product_tag_suggestions": OPERATOR,
    "admin:factory_order_compare_detail": VIEWER,
    "admin:factory_order_compare_sheet": VIEWER,
    "admin:factory_spendentry_report": VIEWER,
    "admin:factory_spendentry_export": VIEWER,    # export only, no import
    "admin:auth_user_password_change": SUPERUSER,
    **{f"django_rq:{name}": SUPERUSER for name in QUEUE_VIEWS},
}
# Lists with import and export: the least role that may import (export
# needs only the view permission).
IMPORTS = {
    "factory_provider": LEAD, "factory_factorymachine": LEAD,
    "factory_template": OPERATOR, "factory_wildcard": OPERATOR,
    "factory_order": OPERATOR, "factory_product": OPERATOR,
    "factory_project": LEAD, "factory_tag": OPERATOR,
}
for _model, _importer in IMPORTS.items():
    URLS.update({
        f"admin:{_model}_import": _importer,
        f"admin:{_model}_process_import": _importer,
        f"admin:{_model}_export": VIEWER,
    })
for _model, (_view, _add, _delete) in MODEL_PAGES.items():
    _app, _name = _model.split("_", 1)
    URLS.update({
        f"admin:{_model}_changelist": _view, f"admin:{_model}_change": _view,
        f"admin:{_model}_history": _view, f"admin:{_model}_add": _add,
        f"admin:{_model}_delete": _delete,
        # Django's bare object URL only redirects to the change page.
        f"admin/{_app}/{_name}/<path:object_id>/": STAFF,
    })

# Endpoints that answer POST only (htmx edits and previews).
POST_ONLY = {
    "admin:factory_order_star": {"star": "1"},
    "admin:factory_order_preview": {},
    "admin:factory_order_preview_change": {},
    "admin:factory_order_switch_machine": {},
    "admin:factory_order_switch_machine_change": {},
    "admin:factory_product_favorite": {},
    "admin:factory_product_rating": {"rating": "3"},
    "admin:factory_product_tags": {"add": "matrix"},
    "admin:factory_product_project": {"project": ""},
    "admin:factory_product_notes": {"notes": "seen"},
    **{f"admin:{_model}_process_import": {} for _model in IMPORTS},
}
# Pages that only work with an optional package: asked by those refused only.
UNAVAILABLE = {"django_rq:scheduler_jobs": "needs rq-scheduler, not installed"}
# Where a refusal may also read "not found": the app index hides what one
# may not see, as Django does.
HIDES = {"admin:app_list"}

# Every action (bulk, detail, list, row, submit line) -> the least role
# it is offered to.
ACTIONS: dict[str, int] = {
    "factory_product.mark_favorite": OPERATOR,
    "factory_product.unmark_favorite": OPERATOR,
    "factory_product.rate_selected": OPERATOR,
    "factory_product.vary_seed_selected": OPERATOR,
    "factory_product.vary_seed_detail": OPERATOR,
    "factory_product.order_again_detail": OPERATOR,
    "factory_product.other_machine_detail": OPERATOR,
    "factory_product.tag_selected": OPERATOR,
    "factory_product.untag_selected": OPERATOR,
    "factory_product.move_selected": OPERATOR,
    "factory_product.archive_selected": OPERATOR,
    "factory_product.restore_selected": OPERATOR,
    "factory_product.order_again_selected": OPERATOR,
    "factory_product.download_zip": VIEWER,
    "factory_product.delete_selected": LEAD,
    "factory_order.retry_failed_orders": OPERATOR,
    "factory_order.cancel_orders": OPERATOR,
    "factory_order.delete_selected": OPERATOR,
    "factory_order.place_detail": OPERATOR,
    "factory_order.order_again_detail": OPERATOR,
    "factory_order.other_machine_detail": OPERATOR,
    "factory_order.save_template_detail": OPERATOR,
    "factory_order.cancel_detail": OPERATOR,
    "factory_order.compare_detail": VIEWER,
    "factory_orderitem.retry_failed": OPERATOR,
    "factory_orderitem.cancel_chosen_items": OPERATOR,
    "factory_orderitem.delete_selected": SUPERUSER,
    "factory_template.new_order_detail": OPERATOR,
    "factory_template.delete_selected": OPERATOR,
    "factory_wildcard.import_list": OPERATOR,
    "factory_wildcard.delete_selected": OPERATOR,
    "factory_provider.delete_selected": LEAD,
    "factory_factorymachine.delete_selected": LEAD,
    "factory_mediafile.delete_selected": SUPERUSER,
    "factory_project.delete_selected": LEAD,
    "factory_tag.delete_selected": LEAD,
    "factory_spendentry.delete_selected": NOBODY,
    "factory_monthlycap.delete_selected": NOBODY,
    "auth_user.delete_selected": SUPERUSER,
    "auth_group.delete_selected": SUPERUSER,
    "axes_accessattempt.delete_selected": SUPERUSER,
    "axes_accessattempt.cleanup_expired_attempts": SUPERUSER,
    "axes_accesslog.delete_selected": SUPERUSER,
    "axes_accessfailurelog.delete_selected": SUPERUSER,
}
# Admins whose forbidden bulk actions answer 403 when posted anyway.
REFUSING = {"factory_product", "factory_order", "factory_orderitem"}

UNFOLD_ACTION_LISTS = ["actions_detail", "actions_list", "actions_row",
                       "actions_submit_line"]


def walk(patterns, prefix: str = "", namespace: str = ""):
    """(key, full route, pattern) for every URL pattern, resolvers opened."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            key = namespace + pattern.name if pattern.name else route
            yield key, route, pattern


@pytest.fixture
def world(demo_order, lead, superuser, redis_db):
    """One row of every model, a draft order and a failed item."""
    project = Project.objects.create(name="Coastal", budget=50)
    product = Product.objects.first()
    tag = Tag.objects.create(name="keeper")
    product.tags.add(tag)
    Template.objects.create(name="Harbour", machine=demo_order.machine, prompt="a harbour")
    Wildcard.objects.create(name="colors/warm", values=["amber", "coral"])
    cap = MonthlyCap.objects.create(amount=None)
    draft = Order.objects.create(
        title="Draft", machine=demo_order.machine, prompt="a lighthouse",
        base_parameters={"width": 192, "height": 128}, created_by=lead,
        project=project,
    )
    item = demo_order.items.first()
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    AccessAttempt.objects.create(username="x", ip_address="127.0.0.9", failures_since_start=1)
    AccessLog.objects.create(username="x", ip_address="127.0.0.9")
    AccessFailureLog.objects.create(username="x", ip_address="127.0.0.9")
    import django_rq
    from django.conf import settings

    from rq import Queue

    name = next(iter(settings.RQ_QUEUES))  # queue 0; enqueued now, not on commit
    queue = Queue(name, connection=django_rq.get_connection(name))
    job = queue.enqueue("builtins.len", "x")
    from rq import Worker

    Worker([queue], connection=queue.connection, name="matrix").register_birth()
    return {
        "job": job.id,
        "factory_provider": Provider.objects.first(),
        "factory_factorymachine": demo_order.machine,
        "factory_template": Template.objects.first(),
        "factory_wildcard": Wildcard.objects.first(),
        "factory_product": product,
        "factory_mediafile": MediaFile.objects.first(),
        "factory_order": draft,
        "factory_orderitem": item,
        "factory_project": project,
        "factory_tag": tag,
        "factory_spendentry": SpendEntry.objects.first(),
        "factory_monthlycap": cap,
        "auth_user": lead,
        "auth_group": lead.groups.first(),
        "axes_accessattempt": AccessAttempt.objects.first(),
        "axes_accesslog": AccessLog.objects.first(),
        "axes_accessfailurelog": AccessFailureLog.objects.first(),
        "placed": demo_order,
    }


def _fill(key: str, route: str, world: dict) -> dict[str, str]:
    """Values for a route's arguments: fixture ids, or names that need not exist."""
    match = next((label for label in world if key.startswith(f"admin:{label}_")
                  or f"/{label.replace('_', '/', 1)}/" in f"/{key}"), None)
    obj = world[match] if match else None
    if key == "admin:factory_order_progress":
        obj = world["placed"]
    values = {
        "object_id": str(obj.pk) if obj else "1",
        "machine_id": str(world["factory_factorymachine"].pk),
        "id": str(world["auth_user"].pk),
        "content_type_id": str(ContentType.objects.get_for_model(Product).pk),
        "app_label": "factory", "url": "nothing-here/",
        "file_path": world["factory_product"].media.file.name,
        "queue_index": "0", "scheduler_index": "0", "connection_index": "0",
        "job_id": world["job"], "result_id": "none", "key": "rq:worker:matrix",
        "scheduler_name": "none", "cron_job_name": "none", "token": "none",
    }
    names = re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", route)
    return {a or b: values[a or b] for a, b in names}


def _url(key: str, route: str, pattern: URLPattern, world: dict) -> str:
    kwargs = _fill(key, route, world)
    if pattern.name:
        return reverse(key, kwargs=kwargs)
    url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: kwargs[m.group(1)], route)
    url = re.sub(r"\(\?P<(\w+)>[^)]*\)\??", lambda m: kwargs[m.group(1)], url)
    return "/" + url.replace("^", "").replace("$", "")


def _query(key: str, world: dict) -> dict[str, str]:
    if key == "admin:autocomplete":
        return {"app_label": "factory", "model_name": "order", "field_name": "project"}
    if key == "admin:factory_order_progress_list":
        return {"ids": str(world["placed"].pk)}
    return {}


def _clients(users: dict) -> list[Client]:
    clients = []
    for role in range(len(ROLES)):
        client = Client()
        if users[role] is not None:
            client.force_login(users[role])
        clients.append(client)
    return clients


def _refused(response, key: str) -> bool:
    if response.status_code == 403:
        return True
    if response.status_code == 404 and key in HIDES:
        return True
    location = response.get("Location", "")
    return response.status_code == 302 and "/admin/login/" in location


@pytest.fixture
def users(staff_without_role, viewer, operator, lead, superuser) -> dict:
    return {ANONYMOUS: None, NO_ROLE: staff_without_role, VIEWER: viewer,
            OPERATOR: operator, LEAD: lead, SUPERUSER: superuser}


@pytest.mark.once
@pytest.mark.django_db
def test_every_url_admits_exactly_the_roles_in_the_table(world, users, settings):
    settings.SERVE_MEDIA = True
    clients = _clients(users)
    seen, wrong = set(), []
    for key, route, pattern in walk(get_resolver().url_patterns):
        assert key in URLS, (
            f"{key!r} ({route}) is not in the roles table: add it to URLS in "
            f"{__file__} with the least role it admits"
        )
        seen.add(key)
        level = URLS[key]
        if level == PUBLIC:
            continue
        url = _url(key, route, pattern, world)
        for role, client in enumerate(clients):
            if key in UNAVAILABLE and role >= level:
                continue
            if key in POST_ONLY:
                response = client.post(url, POST_ONLY[key])
            else:
                response = client.get(url, _query(key, world))
            assert response.status_code < 500, f"{key} as {ROLES[role]}: {response.status_code}"
            refused = _refused(response, key)
            if refused != (role < level):
                wrong.append(f"{key} {url} as {ROLES[role]}: {response.status_code}")
    assert not wrong, "\n".join(wrong)
    assert not set(URLS) - seen, f"rows for URLs that no longer exist: {set(URLS) - seen}"


def _request(user):
    request = RequestFactory().get("/")
    request.user = user or AnonymousUser()
    return request


def _offered(model_admin, request, obj) -> set[str]:
    """Names of every action the admin offers this request."""
    names = set(model_admin.get_actions(request))
    object_id = str(obj.pk) if obj is not None else None
    for listing in UNFOLD_ACTION_LISTS:
        if not getattr(model_admin, listing, None):
            continue
        getter = getattr(model_admin, f"get_{listing}")
        found = getter(request, object_id) if listing in (
            "actions_detail", "actions_submit_line") else getter(request)
        prefix = f"{model_admin.model._meta.app_label}_{model_admin.model._meta.model_name}_"
        names |= {action.action_name.removeprefix(prefix) for action in found}
    return names


def _declared(model_admin) -> set[str]:
    """Every action the admin could offer anyone."""
    names = {name for _, name, _ in model_admin._get_base_actions()}
    for listing in UNFOLD_ACTION_LISTS:
        for entry in getattr(model_admin, listing, None) or ():
            names |= set(entry["items"]) if isinstance(entry, dict) else {entry}
    return names


@pytest.mark.django_db
def test_every_action_is_offered_to_exactly_the_roles_in_the_table(world, users):
    wrong, seen = [], set()
    for model, model_admin in admin.site._registry.items():
        label = f"{model._meta.app_label}_{model._meta.model_name}"
        declared = _declared(model_admin)
        for name in declared:
            key = f"{label}.{name}"
            assert key in ACTIONS, (
                f"action {key!r} is not in the roles table: add it to ACTIONS in "
                f"{__file__} with the least role it is offered to"
            )
            seen.add(key)
        for role, user in users.items():
            offered = _offered(model_admin, _request(user), world.get(label))
            for name in declared:
                if (name in offered) != (role >= ACTIONS[f"{label}.{name}"]):
                    wrong.append(f"{label}.{name} as {ROLES[role]}: "
                                 f"{'offered' if name in offered else 'withheld'}")
    assert not wrong, "\n".join(wrong)
    assert not set(ACTIONS) - seen, f"rows for actions that no longer exist: {set(ACTIONS) - seen}"


@pytest.mark.django_db
def test_forbidden_bulk_actions_answer_403_and_run_nothing(world, users):
    placed = world["placed"]
    placed.items.update(status=ItemStatus.FAILED, last_error="GPU fire")
    Order.objects.filter(pk=placed.pk).update(status=OrderStatus.DONE_WITH_FAILURES)
    before = list(OrderItem.objects.order_by("pk").values_list("pk", "status"))
    for label in REFUSING:
        model_admin = next(a for m, a in admin.site._registry.items()
                           if f"{m._meta.app_label}_{m._meta.model_name}" == label)
        url = reverse(f"admin:{label}_changelist")
        pk = str(placed.pk if label == "factory_order" else world[label].pk)
        for _, name, _ in model_admin._get_base_actions():
            for role in range(NO_ROLE, ACTIONS[f"{label}.{name}"]):
                client = Client()
                client.force_login(users[role])
                response = client.post(url, {"action": name, "index": "0", "confirm": "yes",
                                             "count": "2", "rating": "5",
                                             ACTION_CHECKBOX_NAME: [pk]})
                assert response.status_code == 403, f"{label}.{name} as {ROLES[role]}"
    assert list(OrderItem.objects.order_by("pk").values_list("pk", "status")) == before
    assert Product.objects.filter(is_favorite=True).count() == 0
    assert Product.objects.exclude(rating=None).count() == 0
    assert Order.objects.count() == 2  # no draft from a variation either


@pytest.mark.django_db
def test_a_viewer_cannot_place_by_any_door_and_nothing_changes(world, viewer):
    draft = world["factory_order"]
    client = Client()
    client.force_login(viewer)
    change = reverse("admin:factory_order_change", args=[draft.pk])
    doors = [
        client.post(reverse("admin:factory_order_place", args=[draft.pk])),
        client.post(reverse("admin:factory_order_place_detail", args=[draft.pk])),
        client.post(change, {"title": "Spent", "machine": draft.machine_id,
                             "prompt": "x", "_place": "1"}),
        client.post(reverse("admin:factory_order_cancel_detail", args=[draft.pk]),
                    {"_form_submitted": "1"}),
    ]
    assert [door.status_code for door in doors] == [403] * 4
    draft.refresh_from_db()
    assert (draft.status, draft.title, draft.items.count()) == (OrderStatus.DRAFT, "Draft", 0)


@pytest.mark.django_db
def test_an_operator_without_the_place_permission_saves_but_cannot_place(world, operator):
    from django.contrib.auth.models import Group

    writer = Group.objects.create(name="writer")
    writer.permissions.set(Group.objects.get(name="operator").permissions.exclude(
        codename="place_order"))
    operator.groups.set([writer])
    draft = world["factory_order"]
    client = Client()
    client.force_login(operator)
    response = client.post(reverse("admin:factory_order_preview_change", args=[draft.pk]), {
        "title": "Draft", "machine": draft.machine_id, "prompt": "a lighthouse",
        "prompt_mode": "plain", "base_parameters": "{}", "sweeps": "[]", "runs": "1",
        "seed_strategy": "random", "tokens": "{}", "prompt_samples": "1",
    })
    assert response.status_code == 200
    assert 'id="place-from-form"' not in response.content.decode()
    assert "placing it needs the operator role" in response.content.decode()
    place = client.post(reverse("admin:factory_order_place", args=[draft.pk]))
    assert place.status_code == 403
    draft.refresh_from_db()
    assert (draft.status, draft.items.count()) == (OrderStatus.DRAFT, 0)


@pytest.mark.django_db
def test_staff_without_a_role_sees_how_to_get_one(staff_without_role, catalog):
    client = Client()
    client.force_login(staff_without_role)
    page = client.get(reverse("admin:index")).content.decode()
    assert 'id="no-role"' in page
    assert "dashboard-live" not in page


@pytest.mark.django_db
def test_queue_statistics_json_is_for_superusers_only(lead, superuser, redis_db):
    client = Client()
    client.force_login(lead)
    assert client.get("/admin/queues/stats.json").status_code == 403
    assert Client().get("/admin/queues/stats.json").status_code == 302
    client.force_login(superuser)
    response = client.get("/admin/queues/stats.json")
    assert response.status_code == 200
    assert "queues" in response.json()


@pytest.mark.django_db
def test_budgets_and_the_item_ceiling_are_the_leads(world, operator, lead):
    project, draft = world["factory_project"], world["factory_order"]
    url = reverse("admin:factory_project_change", args=[project.pk])
    form = {"name": project.name, "budget": "9999", "description": ""}
    client = Client()
    client.force_login(operator)
    assert client.post(url, form).status_code == 403
    page = client.get(reverse("admin:factory_order_change", args=[draft.pk])).content.decode()
    assert 'name="item_ceiling"' not in page
    project.refresh_from_db()
    assert project.budget == 50

    client.force_login(lead)
    assert client.post(url, form).status_code == 302
    page = client.get(reverse("admin:factory_order_change", args=[draft.pk])).content.decode()
    assert 'name="item_ceiling"' in page
    project.refresh_from_db()
    assert project.budget == 9999
