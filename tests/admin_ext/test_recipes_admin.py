"""Recipe actions in the admin: order again, templates, wildcard uploads."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from factory.models import Order, OrderStatus, Product, Template, Wildcard


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _order_url(name: str, order: Order) -> str:
    return reverse(f"admin:factory_order_{name}", args=[order.pk])


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.django_db
def test_operator_orders_again_and_lands_on_the_new_draft(demo_order, operator):
    response = _client(operator).get(
        _order_url("order_again_detail", demo_order), follow=True
    )
    again = Order.objects.get(source_order=demo_order)
    assert response.redirect_chain == [(_order_url("change", again), 302)]
    assert again.status == OrderStatus.DRAFT
    assert again.created_by == operator
    assert _messages(response) == [
        "Harbour studies (again) is a new draft; placing it lists what changed."]


@pytest.mark.django_db
def test_viewer_cannot_order_again_or_save_a_template(demo_order, viewer):
    client = _client(viewer)
    assert client.get(_order_url("order_again_detail", demo_order)).status_code == 403
    url = _order_url("save_template_detail", demo_order)
    assert client.get(url).status_code == 403
    assert client.post(url, {"name": "Harbour"}).status_code == 403
    assert Order.objects.count() == 1
    assert Template.objects.count() == 0


@pytest.mark.django_db
def test_change_page_offers_recipe_actions_only_to_those_allowed(
    demo_order, operator, viewer
):
    again = _order_url("order_again_detail", demo_order)
    page = _client(operator).get(_order_url("change", demo_order))
    assert again in page.content.decode()
    page = _client(viewer).get(_order_url("change", demo_order))
    assert again not in page.content.decode()


@pytest.mark.django_db
def test_save_as_template_asks_for_a_name_then_saves_on_post(demo_order, operator):
    client = _client(operator)
    url = _order_url("save_template_detail", demo_order)
    form = client.get(url)
    assert form.status_code == 200
    assert 'value="Harbour studies"' in form.content.decode()
    assert Template.objects.count() == 0
    response = client.post(url, {"name": "Harbour"}, follow=True)
    template = Template.objects.get(name="Harbour")
    assert response.redirect_chain == [
        (reverse("admin:factory_template_change", args=[template.pk]), 302)]
    assert template.base_parameters == {"width": 192, "height": 128}
    assert template.created_by == operator


@pytest.mark.django_db
def test_template_name_clash_is_shown_on_the_form(demo_order, operator):
    Template.objects.create(name="Harbour", machine=demo_order.machine)
    response = _client(operator).post(
        _order_url("save_template_detail", demo_order), {"name": "Harbour"}
    )
    assert response.status_code == 200
    assert "A template named &#x27;Harbour&#x27; already exists" in (
        response.content.decode())
    assert Template.objects.count() == 1


@pytest.mark.django_db
def test_new_order_from_template_lands_on_the_draft(demo_order, operator, viewer):
    template = Template.objects.create(
        name="Harbour", machine=demo_order.machine, prompt="a harbour", runs=3
    )
    url = reverse("admin:factory_template_new_order_detail", args=[template.pk])
    assert _client(viewer).get(url).status_code == 403
    response = _client(operator).get(url)
    order = Order.objects.get(template=template)
    assert response["Location"] == _order_url("change", order)
    assert (order.status, order.prompt, order.runs) == (
        OrderStatus.DRAFT, "a harbour", 3)


@pytest.mark.django_db
def test_product_order_again_lands_on_a_one_item_draft(demo_order, operator, viewer):
    product = Product.objects.get(item__index=1)
    url = reverse("admin:factory_product_order_again_detail", args=[product.pk])
    assert _client(viewer).get(url).status_code == 403
    response = _client(operator).get(url)
    order = Order.objects.exclude(pk=demo_order.pk).get()
    assert response["Location"] == _order_url("change", order)
    assert (order.source_order, order.seed, order.runs) == (demo_order, 2, 1)


@pytest.mark.django_db
def test_place_page_shows_what_changed_since_the_source(demo_order, operator):
    client = _client(operator)
    client.get(_order_url("order_again_detail", demo_order))
    again = Order.objects.get(source_order=demo_order)
    place = _order_url("place", again)
    html = client.get(place).content.decode()
    assert f"Changed since order #{demo_order.pk}" in html
    assert "Nothing: the same recipe" in html
    again.base_parameters = {"width": 256, "height": 128}
    again.runs = 3
    again.save()
    html = client.get(place).content.decode()
    assert "base_parameters.width" in html
    assert "<td class=\"py-2 pr-4 font-medium\">runs</td>" in html
    assert "Nothing: the same recipe" not in html
    assert "base_parameters.height" not in html


@pytest.mark.django_db
def test_place_page_of_a_fresh_order_has_no_changes_table(catalog, operator):
    from factory.models import FactoryMachine

    order = Order.objects.create(
        machine=FactoryMachine.objects.get(slug="demo-image"), prompt="a kite"
    )
    html = _client(operator).get(_order_url("place", order)).content.decode()
    assert 'id="changes"' not in html


def _ceiling_form(order: Order, ceiling: int) -> dict:
    return {
        "title": order.title, "machine": order.machine_id, "prompt": order.prompt,
        "base_parameters": "{}", "sweeps": "[]", "runs": 1,
        "seed_strategy": "random", "seed": "", "prompt_mode": "combinatorial",
        "prompt_samples": 1, "tokens": "{}", "required_parameters": "[]",
        "item_ceiling": ceiling, "template": "", "source_order": "", "project": "",
    }


@pytest.fixture
def draft(catalog) -> Order:
    from factory.models import FactoryMachine

    return Order.objects.create(
        title="Kites", machine=FactoryMachine.objects.get(slug="demo-image"),
        prompt="a kite",
    )


@pytest.mark.django_db
def test_operator_sees_item_ceiling_read_only_and_cannot_raise_it(draft, operator):
    client = _client(operator)
    page = client.get(_order_url("change", draft))
    assert "item_ceiling" in page.context["adminform"].readonly_fields
    assert 'name="item_ceiling"' not in page.content.decode()
    response = client.post(_order_url("change", draft), _ceiling_form(draft, 99999))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.item_ceiling is None
    add_form = client.get(
        reverse("admin:factory_order_add"), {"machine": draft.machine_id}
    )
    assert add_form.context["adminform"].readonly_fields.count("item_ceiling") == 1


@pytest.mark.django_db
def test_lead_can_raise_the_item_ceiling(draft, lead):
    client = _client(lead)
    page = client.get(_order_url("change", draft))
    assert 'name="item_ceiling"' in page.content.decode()
    response = client.post(_order_url("change", draft), _ceiling_form(draft, 99999))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.item_ceiling == 99999


@pytest.mark.django_db
def test_wildcard_upload_creates_rows_from_several_files(operator):
    Wildcard.objects.create(name="warm", values=["amber"])
    client = _client(operator)
    url = reverse("admin:factory_wildcard_import_list")
    assert client.get(url).status_code == 200
    files = [SimpleUploadedFile("warm.txt", b"amber\ncoral\n"),
             SimpleUploadedFile("pantry.json", b'{"colors": {"cool": ["teal"]}}')]
    response = client.post(url, {"files": files}, follow=True)
    assert response.redirect_chain == [
        (reverse("admin:factory_wildcard_changelist"), 302)]
    assert _messages(response) == [
        "Imported 2 wildcards from 2 files: 1 created, 1 updated, 0 unchanged."]
    assert dict(Wildcard.objects.values_list("name", "values")) == {
        "warm": ["amber", "coral"], "colors/cool": ["teal"]}


@pytest.mark.django_db
def test_wildcard_upload_error_is_shown_and_nothing_is_written(operator):
    client = _client(operator)
    files = [SimpleUploadedFile("warm.txt", b"amber\n"),
             SimpleUploadedFile("bad.json", b'{"a":\n]')]
    response = client.post(
        reverse("admin:factory_wildcard_import_list"), {"files": files}
    )
    assert response.status_code == 200
    assert "bad.json: line 2, column 1: Expecting value" in response.content.decode()
    assert Wildcard.objects.count() == 0


@pytest.mark.django_db
def test_wildcard_upload_is_offered_to_operators_not_viewers(operator, viewer):
    changelist = reverse("admin:factory_wildcard_changelist")
    url = reverse("admin:factory_wildcard_import_list")
    assert url in _client(operator).get(changelist).content.decode()
    client = _client(viewer)
    assert url not in client.get(changelist).content.decode()
    assert client.get(url).status_code == 403
    upload = SimpleUploadedFile("warm.txt", b"amber\n")
    assert client.post(url, {"files": [upload]}).status_code == 403
    assert Wildcard.objects.count() == 0
