"""The item state machine: one table, one way to move, nothing around it."""
import ast
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from factory.models import (
    TRANSITIONS, FactoryMachine, ItemStatus, Order, OrderItem, TransitionError,
)
from tests.conftest import ROOT
from tests.states import put

S = ItemStatus
LATER = timezone.now() + timedelta(minutes=5)

# Each named move: how to call it on a queryset, the states it leaves, where it goes.
MOVES = {
    "claim_for_submit": (lambda qs, pk: qs.claim_for_submit(pk, "me:1", timedelta(minutes=1)),
                         {S.PENDING}, S.SUBMITTING),
    "accepted": (lambda qs, pk: qs.filter(pk=pk).accepted("req-1"), {S.SUBMITTING}, S.SUBMITTED),
    "accepted after an unknown outcome": (
        lambda qs, pk: qs.filter(pk=pk).accepted("req-1", frm=(S.SUBMIT_UNKNOWN,)),
        {S.SUBMIT_UNKNOWN}, S.SUBMITTED),
    "outcome_unknown": (lambda qs, pk: qs.filter(pk=pk).outcome_unknown("timed out"),
                        {S.SUBMITTING}, S.SUBMIT_UNKNOWN),
    "back_to_pending": (lambda qs, pk: qs.filter(pk=pk).back_to_pending("503", due_at=LATER),
                        {S.SUBMITTING}, S.PENDING),
    "to_collect": (lambda qs, pk: qs.filter(pk=pk).to_collect(LATER), {S.SUBMITTED}, S.COLLECTING),
    "back_to_polling": (lambda qs, pk: qs.filter(pk=pk).back_to_polling("result 502"),
                        {S.COLLECTING}, S.SUBMITTED),
    "complete": (lambda qs, pk: qs.filter(pk=pk).complete(), {S.COLLECTING}, S.COMPLETED),
    "fail": (lambda qs, pk: qs.filter(pk=pk).fail("refused"),
             {S.SUBMITTING, S.SUBMIT_UNKNOWN, S.SUBMITTED, S.COLLECTING}, S.FAILED),
    "cancel": (lambda qs, pk: qs.filter(pk=pk).cancel(),
               {S.PENDING, S.SUBMITTING, S.SUBMIT_UNKNOWN, S.SUBMITTED}, S.CANCELLED),
}


@pytest.fixture
def item(catalog):
    machine = FactoryMachine.objects.get(slug="demo-image")
    order = Order.objects.create(machine=machine)
    return OrderItem.objects.create(order=order, machine=machine, index=0,
                                    parameters={"prompt": "a fox"})


def docs_table() -> dict[str, tuple[str, ...]]:
    text = (ROOT / "docs" / "concepts.md").read_text()
    start = text.index("| from | may move to |")
    table = text[start:text.index("\n\n", start)]
    rows = re.findall(r"^\| (\w+) \| ([^|]+) \|$", table, re.M)
    return {state: tuple(t.strip() for t in targets.split(",") if t.strip() != "—")
            for state, targets in rows if state != "from"}


def test_the_documented_transitions_are_the_ones_the_code_uses():
    assert docs_table() == {state: tuple(targets) for state, targets in TRANSITIONS.items()}
    assert set(TRANSITIONS) == set(S.values)


@pytest.mark.parametrize("name", MOVES)
@pytest.mark.parametrize("state", S.values)
def test_a_move_applies_only_from_the_states_it_may_leave(item, name, state):
    call, leaves, goes_to = MOVES[name]
    put(item, state, lease_owner="me:1" if state == S.SUBMITTING else "")
    won = call(OrderItem.objects, item.pk)
    item.refresh_from_db()
    if state in leaves:
        assert won and item.status == goes_to
        assert goes_to in TRANSITIONS[state]
    else:
        assert not won and item.status == state


def test_a_move_the_table_lacks_is_refused_before_touching_the_database(item):
    put(item, S.COMPLETED)
    with pytest.raises(TransitionError, match="to pending"):
        OrderItem.objects.filter(pk=item.pk).move(S.PENDING, frm=(S.COMPLETED,))
    with pytest.raises(TransitionError):
        OrderItem.objects.filter(pk=item.pk).move(S.COMPLETED, frm=(S.PENDING,))
    item.refresh_from_db()
    assert item.status == S.COMPLETED


def test_a_move_is_compare_and_set_on_whatever_else_the_caller_holds(item):
    put(item, S.SUBMITTING, lease_owner="first:1")
    assert not OrderItem.objects.filter(pk=item.pk, lease_owner="late:2").accepted("r")
    assert OrderItem.objects.filter(pk=item.pk, lease_owner="first:1").accepted("r") == 1
    item.refresh_from_db()
    assert (item.status, item.request_id, item.lease_owner) == (S.SUBMITTED, "r", "")


def test_completing_clears_what_was_wrong_on_the_way(item):
    put(item, S.COLLECTING, last_error="429: slow down", lease_owner="c:1")
    assert OrderItem.objects.filter(pk=item.pk).complete(cost=1) == 1
    item.refresh_from_db()
    assert (item.last_error, item.lease_owner, item.lease_until) == ("", "", None)
    assert item.completed_at is not None


def _status_writes(path) -> list[str]:
    """Calls in ``path`` that write an item's status other than by a move."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = ast.unparse(node.func.value)
        on_items = "OrderItem" in receiver or "items" in receiver
        if node.func.attr == "update" and on_items and any(
                k.arg == "status" for k in node.keywords):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)[:80]}")
        if node.func.attr == "bulk_update" and on_items and "status" in ast.unparse(node):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_no_module_outside_the_model_writes_an_items_status():
    modules = [p for d in ("factory", "admin_ext") for p in (ROOT / d).rglob("*.py")
               if "migrations" not in p.parts and p.name != "lifecycle.py"]
    assert len(modules) > 30
    assert [w for p in modules for w in _status_writes(p)] == []


def test_the_status_check_finds_a_direct_write(tmp_path, monkeypatch):
    monkeypatch.setattr("tests.factory.test_lifecycle.ROOT", tmp_path)
    sample = tmp_path / "sample.py"
    sample.write_text("OrderItem.objects.filter(pk=1).update(status='failed')\n"
                      "order.items.update(last_error='')\n")
    assert len(_status_writes(sample)) == 1
