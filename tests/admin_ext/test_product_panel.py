"""The grid's side panel and its edits: tags, project and notes."""
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from factory.models import ItemStatus, OrderItem, Product, Project, Tag
from factory.models.inventory import NOTES_MAX_LENGTH
from tests.admin_ext.test_curation import _client, _url, product  # noqa: F401 (a fixture)
from tests.gallery import bulk_products, produce

CHANGELIST = reverse("admin:factory_product_changelist")


def _tags(product: Product) -> list[str]:
    return sorted(product.tags.values_list("name", flat=True))


# The rules, on the models --------------------------------------------------

def test_tags_are_added_by_name_and_matched_whatever_the_case(product):
    Tag.objects.create(name="Sky")
    product.add_tags(["sky", "  golden   hour ", "sky"])
    assert _tags(product) == ["Sky", "golden hour"]
    assert Tag.objects.count() == 2
    product.remove_tags(["Sky", "never there"])
    assert _tags(product) == ["golden hour"]


@pytest.mark.parametrize("name, message", [
    ("", "needs a name"),
    ("   ", "needs a name"),
    ("x" * 65, "at most 64 characters"),
    ("bad\x00tag", r"control character \(U\+0000\) at position 4"),
    ("bell\x07", "control character"),
    ("half\ud800", "lone surrogate"),
])
def test_bad_tag_names_are_refused_with_a_reason(product, name, message):
    with pytest.raises(ValidationError, match=message):
        product.add_tags([name])
    assert not Tag.objects.exists()


def test_project_and_notes_rules(product):
    project = Project.objects.create(name="Harbour")
    product.set_project(str(project.pk))
    assert Product.objects.get(pk=product.pk).project == project
    product.set_project("")
    assert Product.objects.get(pk=product.pk).project is None
    archived = Project.objects.create(name="Old", is_archived=True)
    with pytest.raises(ValidationError, match="Old is archived"):
        product.set_project(archived.pk)
    with pytest.raises(ValidationError, match="open projects"):
        product.set_project("9999")
    product.set_notes("first line\r\nsecond ")
    assert Product.objects.get(pk=product.pk).notes == "first line\nsecond"
    with pytest.raises(ValidationError, match="at most 10,000 characters"):
        product.set_notes("n" * (NOTES_MAX_LENGTH + 1))
    with pytest.raises(ValidationError, match="control character"):
        product.set_notes("nul\x00")
    assert Product.objects.get(pk=product.pk).notes == "first line\nsecond"


def test_tag_suggestions_put_prefix_matches_first(db):
    for name in ["thousand isles", "sand", "sandstone", "Sandy beach", "sky"]:
        Tag.objects.create(name=name)
    assert [t.name for t in Tag.objects.suggest("san")] == [
        "sand", "sandstone", "Sandy beach", "thousand isles",
    ]
    assert not Tag.objects.suggest("nul\x00").exists()


# The panel ----------------------------------------------------------------

@pytest.mark.django_db
def test_panel_shows_preview_parameters_lineage_and_actions(catalog, operator):
    product = produce("demo-image", 1, user=operator)[0]
    product.add_tags(["harbour"])
    item = product.item
    item.attempts = 2
    item.save(update_fields=["attempts"])
    retry = OrderItem.objects.create(
        order=item.order, machine=item.machine, index=1, status=ItemStatus.FAILED,
        parameters=item.parameters, retry_of=item,
    )
    response = _client(operator).get(_url("panel", product))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-panel data-pk="{product.pk}"' in html
    assert f'<img src="{product.media.file.url}"' in html
    assert "<dt>width</dt><dd>256</dd>" in html
    assert "<dt>output_format</dt><dd>png</dd>" in html
    assert "<dt>prompt</dt>" not in html  # shown in its own section
    assert reverse("admin:factory_order_change", args=[item.order.pk]) in html
    assert reverse("admin:factory_orderitem_change", args=[item.pk]) in html
    assert reverse("admin:factory_orderitem_change", args=[retry.pk]) in html
    assert "2 attempts" in html
    assert _url("order_again_detail", product) in html
    assert _url("vary_seed_detail", product) in html
    assert reverse("admin:factory_product_change", args=[product.pk]) in html
    assert 'data-tag="harbour"' in html
    assert 'id="af-tag-input"' in html and 'name="project"' in html


@pytest.mark.django_db
def test_viewer_sees_the_panel_without_controls(product, viewer):
    product.set_notes("kept")
    response = _client(viewer).get(_url("panel", product))
    assert response.status_code == 200
    html = response.content.decode()
    assert "kept" in html
    assert 'id="af-tag-input"' not in html and 'name="project"' not in html
    assert _url("order_again_detail", product) not in html


@pytest.mark.django_db
def test_panel_queries_stay_flat(catalog, operator, django_assert_max_num_queries):
    product = bulk_products(1)[0]
    client = _client(operator)
    client.get(_url("panel", product))  # session warmed
    for count in (1, 20):
        product.add_tags([f"tag {n}" for n in range(count)])
        for index in range(count):
            Project.objects.create(name=f"Project {count}-{index}")
            OrderItem.objects.create(
                order=product.item.order, machine=product.machine,
                index=100 * count + index, parameters={}, retry_of=product.item,
            )
        with django_assert_max_num_queries(8):
            assert client.get(_url("panel", product)).status_code == 200


@pytest.mark.django_db
def test_cards_link_to_their_panel(product, operator):
    html = _client(operator).get(CHANGELIST).content.decode()
    assert f'data-panel-url="{_url("panel", product)}"' in html
    assert 'id="af-panel"' in html


# The edit endpoints ---------------------------------------------------------

@pytest.mark.django_db
def test_tags_are_added_and_removed_answering_with_the_chips(product, operator):
    Tag.objects.create(name="dawn")
    client = _client(operator)
    response = client.post(_url("tags", product), {"add": "Dawn"})
    assert response.status_code == 200
    assert 'data-tag="dawn"' in response.content.decode()
    client.post(_url("tags", product), {"add": "brand new"})
    assert _tags(product) == ["brand new", "dawn"]
    response = client.post(_url("tags", product), {"remove": "dawn"})
    assert 'data-tag="dawn"' not in response.content.decode()
    assert _tags(product) == ["brand new"]


@pytest.mark.django_db
def test_two_stale_pages_adding_tags_both_keep_theirs(product, operator, lead):
    first, second = _client(operator), _client(lead)
    first.get(_url("panel", product))
    second.get(_url("panel", product))  # both pages show no tags
    first.post(_url("tags", product), {"add": "blue"})
    response = second.post(_url("tags", product), {"add": "green"})
    assert _tags(product) == ["blue", "green"]
    html = response.content.decode()
    assert 'data-tag="blue"' in html and 'data-tag="green"' in html


@pytest.mark.django_db
@pytest.mark.parametrize("data, message", [
    ({}, "Name a tag to add or remove."),
    ({"add": "x" * 80}, "at most 64 characters"),
    ({"add": "nul\x00"}, "control character"),
])
def test_bad_tags_answer_400_and_change_nothing(product, operator, data, message):
    response = _client(operator).post(_url("tags", product), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert response["Content-Type"].startswith("text/plain")
    assert _tags(product) == [] and not Tag.objects.exists()


@pytest.mark.django_db
def test_project_moves_and_refuses_what_is_not_an_open_project(product, operator):
    project = Project.objects.create(name="Harbour")
    Project.objects.create(name="Closed", is_archived=True)
    client = _client(operator)
    response = client.post(_url("project", product), {"project": project.pk})
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<option value="{project.pk}" selected>Harbour</option>' in html
    assert "Closed" not in html
    for bad in ("abc", "99999", str(Project.objects.get(name="Closed").pk)):
        response = client.post(_url("project", product), {"project": bad})
        assert response.status_code == 400
    assert Product.objects.get(pk=product.pk).project == project
    response = client.post(_url("project", product), {"project": ""})
    assert response.status_code == 200
    assert Product.objects.get(pk=product.pk).project is None


@pytest.mark.django_db
def test_notes_are_saved_and_capped(product, operator):
    client = _client(operator)
    response = client.post(_url("notes", product), {"notes": "warm light"})
    assert response.status_code == 200
    assert "warm light</textarea>" in response.content.decode()
    assert "Saved." in response.content.decode()
    response = client.post(_url("notes", product), {"notes": "n" * 10_001})
    assert response.status_code == 400
    assert "at most 10,000 characters" in response.content.decode()
    assert client.post(_url("notes", product), {}).status_code == 400
    assert Product.objects.get(pk=product.pk).notes == "warm light"


@pytest.mark.django_db
@pytest.mark.parametrize("name, data", [
    ("tags", {"add": "sky"}), ("project", {"project": ""}), ("notes", {"notes": "x"}),
])
def test_viewer_gets_403_and_nothing_changes(product, viewer, name, data):
    product.set_notes("before")
    response = _client(viewer).post(_url(name, product), data)
    assert response.status_code == 403
    assert response.content.decode() == "You may not change products."
    product.refresh_from_db()
    assert (_tags(product), product.notes) == ([], "before")


@pytest.mark.django_db
@pytest.mark.parametrize("name, data", [
    ("tags", {"add": "sky"}), ("project", {"project": ""}), ("notes", {"notes": "x"}),
])
def test_edits_need_the_csrf_token(product, operator, name, data):
    client = _client(operator, csrf=True)
    assert client.post(_url(name, product), data).status_code == 403
    assert _tags(product) == [] and Product.objects.get(pk=product.pk).notes == ""
    client.get(CHANGELIST)
    token = client.cookies["csrftoken"].value
    response = client.post(_url(name, product), data, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200


@pytest.mark.django_db
def test_a_refused_tag_edit_writes_nothing(product, operator):
    response = _client(operator).post(
        _url("tags", product), {"add": "kept out", "remove": "bad\x00"}
    )
    assert response.status_code == 400
    assert _tags(product) == [] and not Tag.objects.exists()


@pytest.mark.django_db
def test_panel_needs_the_view_permission(product, django_user_model):
    stranger = django_user_model.objects.create_user("stranger", is_staff=True)
    response = _client(stranger).get(_url("panel", product))
    assert response.status_code == 403
    assert response.content.decode() == "You may not view products."


@pytest.mark.django_db
def test_edits_and_panel_refuse_the_wrong_method(product, operator):
    client = _client(operator)
    assert client.get(_url("tags", product)).status_code == 405
    assert client.post(_url("panel", product)).status_code == 405


@pytest.mark.django_db
def test_tag_suggestions_answer_json_to_curators_only(product, operator, viewer):
    Tag.objects.create(name="sunset")
    url = reverse("admin:factory_product_tag_suggestions")
    response = _client(operator).get(url, {"q": "sun"})
    assert response.json() == {"tags": ["sunset"]}
    assert _client(operator).get(url, {"q": ""}).json() == {"tags": []}
    assert _client(viewer).get(url, {"q": "sun"}).status_code == 403
