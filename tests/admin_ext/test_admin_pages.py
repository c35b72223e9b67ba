"""Every admin page of every model answers for the right people."""
import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from factory.models import MonthlyCap, Product, Project, Tag, Template, Wildcard


@pytest.fixture
def everything(demo_order, lead):
    """At least one row of every registered model."""
    project = Project.objects.create(name="Coastal", budget=50)
    product = Product.objects.first()
    tag = Tag.objects.create(name="keeper")
    product.tags.add(tag)
    product.project = project
    product.save(update_fields=["project"])
    Template.objects.create(name="Harbour", machine=demo_order.machine,
                            prompt="a harbour")
    Wildcard.objects.create(name="colors/warm", values=["amber", "coral"])
    MonthlyCap.objects.create(amount=100)
    return demo_order


def _admin_urls():
    for model, model_admin in admin.site._registry.items():
        info = model._meta.app_label, model._meta.model_name
        yield model, model_admin, info


@pytest.mark.django_db
def test_every_changelist_add_and_change_page_answers_for_a_superuser(
    everything, superuser
):
    client = Client()
    client.force_login(superuser)
    checked = 0
    for model, model_admin, info in _admin_urls():
        response = client.get(reverse("admin:%s_%s_changelist" % info))
        assert response.status_code == 200, f"{model} changelist"
        obj = model._default_manager.first()
        if obj is None:  # login-throttling records exist only after failures
            assert model._meta.app_label == "axes", f"no {model} row to open"
        else:
            response = client.get(reverse("admin:%s_%s_change" % info, args=[obj.pk]))
            assert response.status_code == 200, f"{model} change"
        # The monthly cap's add page opens its one row once it exists.
        add = client.get(reverse("admin:%s_%s_add" % info), follow=True)
        expected = 200 if model_admin.has_add_permission(_request(superuser)) else 403
        assert add.status_code == expected, f"{model} add"
        checked += 1
    assert checked >= 12


def _request(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    return request


@pytest.mark.django_db
def test_products_changelist_shows_thumbnails(everything, lead, django_assert_max_num_queries):
    client = Client()
    client.force_login(lead)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("admin:factory_product_changelist"))
    html = response.content.decode()
    assert html.count('loading="lazy"') == 2
    thumb = Product.objects.first().media.thumbnail.url
    assert thumb in html
    image = client.get(thumb)
    assert image.status_code == 200


@pytest.mark.django_db
def test_media_is_not_served_to_anonymous_visitors(everything):
    url = Product.objects.first().media.file.url
    response = Client().get(url)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_queues_are_for_superusers_only(lead, superuser):
    client = Client()
    client.force_login(lead)
    assert client.get("/admin/queues/").status_code == 403
    client.force_login(superuser)
    assert client.get("/admin/queues/").status_code == 200


@pytest.mark.django_db
def test_viewer_can_browse_but_not_place(everything, viewer):
    client = Client()
    client.force_login(viewer)
    assert client.get(reverse("admin:factory_product_changelist")).status_code == 200
    assert client.get(reverse("admin:factory_order_changelist")).status_code == 200
    assert client.get(reverse("admin:factory_order_add")).status_code == 403
