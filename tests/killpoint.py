"""Run a manage.py command that SIGKILLs its own process at one named point.

Test-only launcher for the kill-point matrix (``tests/factory/production/
test_kill_points.py``): ``python -m tests.killpoint rqworker …`` or
``python -m tests.killpoint run_foreman …``. ``KILL_POINT`` names the point,
``KILL_MARKER`` a file created with O_EXCL just before the kill, so among all
the processes of one test exactly one dies, once, and the test can tell it
happened. Product code is never changed: public functions are wrapped here,
before the command runs. A point whose function is renamed no longer fires,
and the test fails on the missing marker rather than passing untested.
"""
import functools
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

Check = Callable[..., bool]


def kill_once(point: str) -> None:
    """SIGKILL this process unless some process already died for the test."""
    try:
        fd = os.open(os.environ["KILL_MARKER"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, f"{point} pid={os.getpid()} argv={' '.join(sys.argv[1:])}\n".encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def wrap(owner: Any, name: str, point: str, *, before: bool = False,
         when: Check = lambda result, *args, **kwargs: True) -> None:
    """Replace ``owner.name`` by a version that dies before or after the call.

    ``when`` sees the call's result (None before the call) and arguments.
    """
    real = getattr(owner, name)

    @functools.wraps(real)
    def dying(*args: Any, **kwargs: Any) -> Any:
        if before and when(None, *args, **kwargs):
            kill_once(point)
        result = real(*args, **kwargs)
        if not before and when(result, *args, **kwargs):
            kill_once(point)
        return result

    setattr(owner, name, dying)


def install(point: str) -> None:
    """Wrap the function where ``point`` lies; imports need Django set up."""
    from factory.media import download
    from factory.models import ItemStatus
    from factory.models.orders import OrderItemQuerySet
    from factory.production import collect, submit
    from factory.providers.fal import FalBackend
    from factory.providers.replicate import ReplicateBackend

    backends = (FalBackend, ReplicateBackend)
    if point == "after_claim":  # claimed for submitting, the attempt counted
        wrap(OrderItemQuerySet, "claim", point, when=lambda item, *a, **kw: (
            item is not None and kw.get("to") == ItemStatus.SUBMITTING))
    elif point == "after_intent":  # the POST not yet sent
        for backend in backends:
            wrap(backend, "submit", point, before=True)
    elif point == "accepted_unsaved":  # the provider accepted; id not saved
        for backend in backends:
            wrap(backend, "submit", point)
    elif point == "after_id_saved":
        wrap(submit, "record_request", point)
    elif point == "mid_poll":  # the foreman, inside a status call's answer
        for backend in backends:
            wrap(backend, "status", point)
    elif point == "mid_download":  # the first bytes of an output arrived
        wrap(download.DeadlineStream, "read", point,
             when=lambda data, *a, **kw: bool(data))
    elif point == "stored_before_product":  # file and thumbnail stored, no rows
        wrap(collect, "store_once", point,
             when=lambda stored, *a, **kw: stored.path.startswith("thumbs/"))
    elif point == "after_product_row":  # a product saved, the item not completed
        wrap(collect, "record_output", point)
    elif point:
        raise SystemExit(f"unknown kill point {point!r}")


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "artfactory.settings")
    import django
    from django.core.management import execute_from_command_line

    django.setup()
    install(os.environ.get("KILL_POINT", ""))
    execute_from_command_line(["manage.py", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
