"""Production commands: workers, foreman, status, monitors and debugging."""
import io
import subprocess
import sys

import django_rq
import pytest
from django.core.management import CommandError, call_command
from rq import SimpleWorker

from factory.models import ItemStatus, OrderItem, OrderStatus, Product
from factory.production.queues import SUBMIT_QUEUE, live_item_ids
from tests.conftest import ROOT, worker_env
from tests.factory.production.test_foreman import drive, place_demo, submitted_item

pytestmark = pytest.mark.django_db(transaction=True)
COMMANDS = [
    "run_worker", "run_foreman", "worker_status", "process_pending_orders",
    "monitor_orders", "debug_orders", "simple_process",
]


@pytest.fixture
def quick(settings):
    settings.DEMO_LATENCY_SECONDS = 0.2
    settings.PRODUCTION_PENDING_GRACE_SECONDS = 0


def run(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_explains_itself(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        call_command(name, "--help")
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith("usage: ")
    assert len(help_text.split("\n\n")[1]) > 40  # a real description


def test_run_worker_in_burst_mode_works_off_the_queues(
    catalog, redis_db, lead, media_root
):
    order = place_demo(lead, runs=2)

    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "run_worker", "--burst"],
        env=worker_env(media_root), cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert set(order.items.values_list("status", flat=True)) == {ItemStatus.SUBMITTED}


def test_run_foreman_hands_finished_items_on_and_stops_at_max_seconds(
    catalog, redis_db, lead, quick
):
    order = place_demo(lead, runs=2)
    django_rq.get_worker(SUBMIT_QUEUE, worker_class=SimpleWorker).work(burst=True)

    out = run("run_foreman", "--max-seconds", "1", "--tick", "0.05",
              "--poll", "0.05", "--name", "foreman:cli")

    assert out.startswith("foreman:cli: following in-flight items")
    assert "foreman:cli: stopped after" in out
    assert set(order.items.values_list("status", flat=True)) == {
        ItemStatus.COLLECTING}
    drive()
    assert Product.objects.filter(item__order=order).count() == 2


def test_run_foreman_until_idle_exits_once_nothing_is_unfinished(
    catalog, redis_db, lead, quick
):
    place_demo(lead, runs=1)
    drive()

    out = run("run_foreman", "--until-idle", "--name", "foreman:cli")

    assert out.endswith("foreman:cli: stopped after 1 ticks\n")


def test_worker_status_shows_queues_and_items_in_flight_per_provider(
    catalog, redis_db, lead
):
    order = place_demo(lead, runs=3)
    submitted_item(order)

    out = run("worker_status")

    assert "Workers: 0" in out
    assert "  submit: 3 queued, 0 running, 0 failed" in out
    assert "  due later (retries and pauses): 0" in out
    assert "  demo: submitting 0, submitted 1, submit_unknown 0, collecting 0" in out
    assert "  provider:demo: 0/8" in out


def test_process_pending_orders_queues_items_whose_jobs_were_lost(
    catalog, redis_db, lead
):
    order = place_demo(lead, runs=3)
    redis_db.flushdb()

    assert run("process_pending_orders") == "3 pending items queued\n"
    assert live_item_ids(SUBMIT_QUEUE) == set(order.items.values_list("pk", flat=True))
    assert run("process_pending_orders") == "0 pending items queued\n"


def test_process_pending_orders_retries_failed_items(catalog, redis_db, lead, quick):
    order = place_demo(lead, runs=2)
    drive()
    failed = order.items.get(index=0)
    OrderItem.objects.filter(pk=failed.pk).update(status=ItemStatus.FAILED)

    out = run("process_pending_orders", "--retry-failed", "--order-id", str(order.pk))

    assert "1 failed items queued again as new attempts" in out
    assert OrderItem.objects.get(retry_of=failed).status == ItemStatus.PENDING


def test_monitor_orders_once_shows_progress(catalog, redis_db, lead, quick):
    done = place_demo(lead, runs=2, title="Harbour studies")
    drive()
    open_order = place_demo(lead, runs=4, title="Lighthouse")

    out = run("monitor_orders", "--once")

    assert f"#{open_order.pk:<5} Lighthouse" in out
    assert "[....................] 0/4  pend 4" in out
    assert f"#{done.pk:<5} Harbour studies" in out
    assert "[####################] 2/2  done 2" in out
    assert "provider:demo 0/8" in out


def test_debug_orders_lists_items_and_filters_failures(catalog, redis_db, lead):
    order = place_demo(lead, runs=2)
    failed = order.items.get(index=1)
    OrderItem.objects.filter(pk=failed.pk).update(
        status=ItemStatus.FAILED, attempts=2, last_error="demo: out of paint")

    everything = run("debug_orders", "--order-id", str(order.pk))
    failures = run("debug_orders", "--failed-only")

    assert f"order {order.pk} " in everything
    assert f"item {failed.pk} #1 failed attempts=2 request=-" in everything
    assert "      demo: out of paint" in everything
    assert "#0 pending" in everything
    assert "#0 pending" not in failures
    assert f"item {failed.pk} #1 failed" in failures
    with pytest.raises(CommandError, match="order 999999 does not exist"):
        run("debug_orders", "--order-id", "999999")


def test_simple_process_runs_one_item_in_the_foreground(
    catalog, redis_db, lead, quick
):
    order = place_demo(lead, runs=2)
    item = order.items.get(index=0)

    out = run("simple_process", "--order-item-id", str(item.pk), "--poll-seconds",
              "0.05")

    item.refresh_from_db()
    assert item.status == ItemStatus.COMPLETED
    assert Product.objects.filter(item=item).count() == 1
    lines = out.splitlines()
    assert lines[0] == f"item {item.pk}: pending"
    assert f"item {item.pk}: submitted" in lines
    assert f"item {item.pk}: collecting" in lines
    assert lines[-1] == f"item {item.pk}: completed"
    assert order.items.get(index=1).status == ItemStatus.PENDING
    with pytest.raises(CommandError, match="order item 999999 does not exist"):
        run("simple_process", "--order-item-id", "999999")


def test_simple_process_reports_a_failed_item(catalog, redis_db, lead):
    order = place_demo(lead, runs=1)
    item = order.items.get()
    OrderItem.objects.filter(pk=item.pk).update(parameters={"prompt": " "})

    with pytest.raises(CommandError, match="prompt: a non-empty prompt is required"):
        run("simple_process", "--order-item-id", str(item.pk))
    order.refresh_from_db()
    assert order.status == OrderStatus.DONE_WITH_FAILURES
