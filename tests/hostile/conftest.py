"""The hostile-input suite's fixtures: one catalog per module, and the
checks every case ends with: nothing written, nothing queued."""
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import pytest
from django.core.management import call_command
from django.db import transaction

from factory.models import MediaFile, Order, OrderItem, Product, Wildcard

WILDCARDS = {"colors": ["red", "dark blue"], "loop": ["__loop__"], "empty": [" "]}


@dataclass(frozen=True)
class Case:
    """One hostile input: where it enters, what it is, what the refusal says."""

    kind: str
    name: str
    value: object
    says: tuple[str, ...]
    never: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        return self.name


def case(kind: str, name: str, value: object, *says: str, never: tuple[str, ...] = ()) -> Case:
    return Case(kind, name, value, says, never)


def assert_clear(message: str, refusal: Case) -> None:
    """The message names what is wrong, and never what it must not say."""
    shown = message if len(message) < 2000 else message[:300] + " … " + message[-1500:]
    for fragment in refusal.says:
        assert fragment in message, f"{refusal.name}: {fragment!r} not in {shown!r}"
    for fragment in refusal.never:
        assert fragment not in message, f"{refusal.name}: {fragment!r} in {shown!r}"
    assert "Traceback" not in message and "IntegrityError" not in message


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """The seed catalog and a few wildcards, loaded once per module and
    rolled back after it; each test runs in its own savepoint inside."""
    with django_db_blocker.unblock(), transaction.atomic():
        call_command("load_seed_data", verbosity=0)
        for name, values in WILDCARDS.items():
            Wildcard.objects.update_or_create(name=name, defaults={"values": values})
        yield
        transaction.set_rollback(True)


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count()
            for model in (Order, OrderItem, Product, MediaFile)}


@pytest.fixture
def untouched(seeded, db, redis_db, django_capture_on_commit_callbacks):
    """A context to run a refusal in: afterwards no row was added or removed
    in orders, items, products or media, and no job is in a Redis queue.
    On-commit callbacks run, so a job queued after a commit would show."""

    @contextmanager
    def watch() -> Iterator[None]:
        before = _counts()
        with django_capture_on_commit_callbacks(execute=True):
            yield
        assert _counts() == before
        assert redis_db.keys("rq:*") == []

    return watch
