"""Login lockout: one username from one address, and a page saying until when."""
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture(autouse=True)
def low_limit(settings):
    settings.AXES_FAILURE_LIMIT = 3


@pytest.fixture
def people(db):
    for name in ("ana", "ben"):
        User.objects.create_user(name, password=f"right-{name}", is_staff=True)


def sign_in(username: str, password: str, address: str):
    return Client(REMOTE_ADDR=address).post(
        LOGIN, {"username": username, "password": password})


def lock_out(username: str, address: str) -> None:
    for _ in range(3):
        sign_in(username, "wrong", address)


def test_a_locked_out_person_is_told_when_to_try_again(people):
    lock_out("ana", "10.0.0.1")
    response = sign_in("ana", "right-ana", "10.0.0.1")
    page = response.content.decode()
    assert response.status_code == 429
    assert 'id="lockout-until"' in page and "try again at" in page
    assert "<strong" in page and ">ana</strong>" in page
    assert re.search(r"in (59|60)\xa0minutes|in 1\xa0hour", page)
    assert 'id="login-form"' not in page  # not the form again, which would only fail


def test_the_same_address_still_lets_everyone_else_in(people):
    lock_out("ana", "10.0.0.1")
    response = sign_in("ben", "right-ben", "10.0.0.1")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_the_same_person_from_another_address_gets_in(people):
    lock_out("ana", "10.0.0.1")
    response = sign_in("ana", "right-ana", "10.0.0.2")
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_below_the_limit_the_login_form_says_what_went_wrong(people):
    response = sign_in("ana", "wrong", "10.0.0.1")
    assert response.status_code == 200
    assert 'id="login-form"' in response.content.decode()
