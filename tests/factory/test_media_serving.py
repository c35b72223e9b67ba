"""Local media: staff only, cached for good, and no database per file."""
import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from factory.media.storage import store_once
from factory.views import media
from factory.views.media import IMMUTABLE, MEDIA_PASS_COOKIE, REVALIDATE

GRID = reverse("admin:factory_product_changelist")


@pytest.fixture
def stored(media_root) -> str:
    """A content-addressed file under MEDIA_ROOT; its URL."""
    return "/media/" + store_once(b"\x89PNG fake", "png", "thumbs").path


@pytest.fixture
def staff(lead) -> Client:
    """A signed-in staff browser that has opened one admin page."""
    client = Client()
    client.force_login(lead)
    assert client.get(GRID).status_code == 200
    return client


@pytest.mark.django_db
def test_a_staff_page_hands_out_an_httponly_media_pass(staff):
    cookie = staff.cookies[MEDIA_PASS_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


@pytest.mark.django_db
def test_media_is_sent_immutable_with_an_etag_and_no_query(staff, stored):
    with CaptureQueriesContext(connection) as captured:
        response = staff.get(stored)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x89PNG fake"
    assert response["Cache-Control"] == IMMUTABLE
    assert response["Content-Type"] == "image/png"
    assert response["ETag"].startswith('"')
    assert len(captured) == 0
    again = staff.get(stored, HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again["Cache-Control"] == IMMUTABLE


@pytest.mark.django_db
def test_a_page_of_thumbnails_costs_no_queries_beyond_the_page(staff, stored):
    with CaptureQueriesContext(connection) as captured:
        for _ in range(100):
            assert staff.get(stored).status_code == 200
    assert len(captured) == 0


@pytest.mark.django_db
def test_a_name_that_is_not_a_content_hash_is_revalidated(staff, media_root):
    media_root.mkdir(parents=True, exist_ok=True)
    (media_root / "notes.txt").write_text("plain")
    response = staff.get("/media/notes.txt")
    assert response.status_code == 200
    assert response["Cache-Control"] == REVALIDATE


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_sign_in(stored):
    response = Client().get(stored)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_signed_in_non_staff_get_no_media(stored, django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_user("visitor"))
    assert client.get(stored).status_code == 302
    assert MEDIA_PASS_COOKIE not in client.cookies


@pytest.mark.django_db
def test_a_pass_is_bound_to_its_session(staff, stored, lead):
    token = staff.cookies[MEDIA_PASS_COOKIE].value
    other = Client()
    other.cookies[MEDIA_PASS_COOKIE] = token  # a copied pass, another session
    assert other.get(stored).status_code == 302
    staff.logout()
    staff.cookies[MEDIA_PASS_COOKIE] = token
    assert staff.get(stored).status_code == 302


@pytest.mark.django_db
def test_a_forged_or_expired_pass_falls_back_to_the_session(staff, stored, monkeypatch):
    staff.cookies[MEDIA_PASS_COOKIE] = "forged:value"
    with CaptureQueriesContext(connection) as captured:
        response = staff.get(stored)
    assert response.status_code == 200 and len(captured) > 0  # the session was read
    assert staff.cookies[MEDIA_PASS_COOKIE].value != "forged:value"  # and a pass given
    later = time.time() + media.MEDIA_PASS_SECONDS + 10
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    assert not media.has_media_pass(_request_with(staff))


def _request_with(client: Client):
    from django.test import RequestFactory

    request = RequestFactory().get("/media/x")
    request.COOKIES = {name: morsel.value for name, morsel in client.cookies.items()}
    return request


@pytest.mark.django_db
def test_paths_outside_media_root_are_not_served(staff):
    assert staff.get("/media/../settings.py").status_code == 404
    assert staff.get("/media/thumbs/none.png").status_code == 404
