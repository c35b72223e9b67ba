"""One-click curation from the grid: favorite and rating endpoints, bulk actions."""
import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from factory.models import Product
from tests.gallery import bulk_products

CHANGELIST = "admin:factory_product_changelist"


@pytest.fixture
def product(catalog) -> Product:
    return bulk_products(1)[0]


def _url(name: str, product: Product) -> str:
    return reverse(f"admin:factory_product_{name}", args=[product.pk])


def _client(user, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def _csrf_token(client: Client) -> str:
    client.get(reverse(CHANGELIST))
    return client.cookies["csrftoken"].value


def test_rating_rules_live_on_the_product(product):
    product.set_rating("4")
    assert Product.objects.get(pk=product.pk).rating == 4
    product.set_rating("")
    assert Product.objects.get(pk=product.pk).rating is None
    with pytest.raises(ValidationError, match="whole number from 1 to 5"):
        product.set_rating(0)
    assert product.toggle_favorite() is True
    assert Product.objects.get(pk=product.pk).is_favorite is True


@pytest.mark.django_db
def test_favorite_toggles_and_answers_with_the_card(product, operator):
    client = _client(operator)
    response = client.post(_url("favorite", product))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="product-card-{product.pk}"' in html
    assert 'data-favorite="true"' in html
    assert Product.objects.get(pk=product.pk).is_favorite is True
    client.post(_url("favorite", product))
    assert Product.objects.get(pk=product.pk).is_favorite is False


@pytest.mark.django_db
def test_favorite_sets_the_state_the_card_asked_for(product, operator):
    client = _client(operator)
    for _ in range(2):  # a second click on a stale card does not undo the first
        response = client.post(_url("favorite", product), {"favorite": "on"})
        assert response.status_code == 200
    assert Product.objects.get(pk=product.pk).is_favorite is True
    client.post(_url("favorite", product), {"favorite": "off"})
    assert Product.objects.get(pk=product.pk).is_favorite is False


@pytest.mark.django_db
def test_rating_is_set_and_cleared(product, operator):
    client = _client(operator)
    response = client.post(_url("rating", product), {"rating": "4"})
    assert response.status_code == 200
    assert 'data-rating="4"' in response.content.decode()
    assert Product.objects.get(pk=product.pk).rating == 4
    response = client.post(_url("rating", product), {"rating": ""})
    assert response.status_code == 200
    assert 'data-rating=""' in response.content.decode()
    assert Product.objects.get(pk=product.pk).rating is None


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["7", "0", "abc", "2.5", "-1"])
def test_bad_rating_is_refused_with_a_sentence(product, operator, value):
    product.set_rating(3)
    response = _client(operator).post(_url("rating", product), {"rating": value})
    assert response.status_code == 400
    assert response.content.decode() == "A rating is a whole number from 1 to 5."
    assert "product_rating" not in response.content.decode()
    assert Product.objects.get(pk=product.pk).rating == 3


@pytest.mark.django_db
def test_missing_rating_and_bad_favorite_are_refused(product, operator):
    client = _client(operator)
    response = client.post(_url("rating", product), {})
    assert response.status_code == 400
    response = client.post(_url("favorite", product), {"favorite": "maybe"})
    assert response.status_code == 400
    assert response.content.decode() == "Favorite is either on or off."
    fresh = Product.objects.get(pk=product.pk)
    assert (fresh.rating, fresh.is_favorite) == (None, False)


@pytest.mark.django_db
@pytest.mark.parametrize("name, data", [
    ("favorite", {"favorite": "on"}), ("rating", {"rating": "5"}),
])
def test_viewer_may_not_curate(product, viewer, name, data):
    response = _client(viewer).post(_url(name, product), data)
    assert response.status_code == 403
    assert response.content.decode() == "You may not change products."
    fresh = Product.objects.get(pk=product.pk)
    assert (fresh.rating, fresh.is_favorite) == (None, False)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["favorite", "rating"])
def test_anonymous_visitors_are_sent_to_log_in(product, name):
    response = Client().post(_url(name, product), {"rating": "5"})
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert Product.objects.get(pk=product.pk).rating is None


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["favorite", "rating"])
def test_endpoints_answer_only_post(product, operator, name):
    assert _client(operator).get(_url(name, product)).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("name, data", [
    ("favorite", {"favorite": "on"}), ("rating", {"rating": "5"}),
])
def test_csrf_is_enforced(product, operator, name, data):
    client = _client(operator, csrf=True)
    assert client.post(_url(name, product), data).status_code == 403
    fresh = Product.objects.get(pk=product.pk)
    assert (fresh.rating, fresh.is_favorite) == (None, False)
    token = _csrf_token(client)
    response = client.post(_url(name, product), data, headers={"X-CSRFToken": token})
    assert response.status_code == 200


@pytest.mark.django_db
def test_two_people_editing_one_card_both_land(product, operator, lead):
    first, second = _client(operator, csrf=True), _client(lead, csrf=True)
    first_token, second_token = _csrf_token(first), _csrf_token(second)
    first.post(_url("favorite", product), {"favorite": "on"},
               headers={"X-CSRFToken": first_token})
    # the second card still shows "not favorite, no rating"
    second.post(_url("rating", product), {"rating": "2"},
                headers={"X-CSRFToken": second_token})
    fresh = Product.objects.get(pk=product.pk)
    assert (fresh.is_favorite, fresh.rating) == (True, 2)


@pytest.mark.django_db
def test_unknown_product_is_404(catalog, operator):
    url = reverse("admin:factory_product_rating", args=[999999])
    assert _client(operator).post(url, {"rating": "3"}).status_code == 404


# Bulk actions -----------------------------------------------------------

def _act(client: Client, action: str, products, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [p.pk for p in products], **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


@pytest.mark.django_db
def test_bulk_unfavorite(catalog, operator):
    products = bulk_products(3)
    Product.objects.update(is_favorite=True)
    response = _act(_client(operator), "unmark_favorite", products[:2])
    assert "2 products removed from favorites." in response.content.decode()
    assert list(Product.objects.order_by("pk").values_list("is_favorite", flat=True)) \
        == [False, False, True]


@pytest.mark.django_db
def test_bulk_mark_favorite_still_works(catalog, operator):
    products = bulk_products(2)
    response = _act(_client(operator), "mark_favorite", products[:1])
    assert "1 product marked as favorite." in response.content.decode()
    assert Product.objects.filter(is_favorite=True).count() == 1


@pytest.mark.django_db
def test_bulk_rate_asks_first_then_rates(catalog, operator):
    products = bulk_products(3)
    client = _client(operator)
    page = _act(client, "rate_selected", products[:2])
    assert page.status_code == 200
    html = page.content.decode()
    assert "Rate 2 products" in html
    assert Product.objects.filter(rating__isnull=False).count() == 0
    done = _act(client, "rate_selected", products[:2], confirm="yes", rating="4")
    assert "2 products rated 4." in done.content.decode()
    assert list(Product.objects.order_by("pk").values_list("rating", flat=True)) \
        == [4, 4, None]
    cleared = _act(client, "rate_selected", products[:1], confirm="yes", rating="")
    assert "Rating cleared on 1 product." in cleared.content.decode()
    assert Product.objects.get(pk=products[0].pk).rating is None


@pytest.mark.django_db
def test_bulk_rate_refuses_a_bad_rating(catalog, operator):
    products = bulk_products(1)
    page = _act(_client(operator), "rate_selected", products, confirm="yes", rating="9")
    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()
    assert Product.objects.get(pk=products[0].pk).rating is None


@pytest.mark.django_db
def test_viewer_has_no_bulk_curation(catalog, viewer):
    products = bulk_products(1)
    _act(_client(viewer), "rate_selected", products, confirm="yes", rating="4")
    assert Product.objects.get(pk=products[0].pk).rating is None
