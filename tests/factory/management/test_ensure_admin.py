"""`ensure_admin`: one random password, stored once, reused on every rerun."""
import io
import stat
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import RequestFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def login_file(settings, tmp_path: Path) -> Path:
    """The login file, moved into the test's temporary directory."""
    settings.ADMIN_LOGIN_FILE = tmp_path / "var" / "admin-login.txt"
    return settings.ADMIN_LOGIN_FILE


def run_ensure_admin(*args: str) -> str:
    """Run the command and return what it printed."""
    out = io.StringIO()
    call_command("ensure_admin", *args, stdout=out)
    return out.getvalue()


def printed_password(output: str) -> str:
    """The password from the printed login line."""
    return output.rsplit("password: ", 1)[1].strip()


def can_log_in(username: str, password: str) -> bool:
    """Whether the admin login would accept these credentials."""
    request = RequestFactory().post("/admin/login/")
    return authenticate(request, username=username, password=password) is not None


def test_first_run_creates_a_superuser_with_a_random_stored_password(
    login_file: Path,
) -> None:
    output = run_ensure_admin()

    password = printed_password(output)
    assert output.startswith("Admin: http://127.0.0.1:8000/admin/  user: admin  ")
    assert len(password) >= 20
    assert login_file.read_text() == f"user=admin\npassword={password}\n"
    assert stat.S_IMODE(login_file.stat().st_mode) == 0o600
    admin = User.objects.get(username="admin")
    assert (admin.is_superuser, admin.is_staff, admin.is_active) == (True, True, True)
    assert can_log_in("admin", password) is True


def test_rerun_reuses_the_stored_password(login_file: Path) -> None:
    first = printed_password(run_ensure_admin())

    second = printed_password(run_ensure_admin())

    assert second == first
    assert User.objects.filter(username="admin").count() == 1
    assert can_log_in("admin", first) is True


def test_each_new_login_file_gets_a_different_password(
    settings, tmp_path: Path
) -> None:
    passwords = set()
    for name in ("one", "two", "three"):
        settings.ADMIN_LOGIN_FILE = tmp_path / name / "admin-login.txt"
        passwords.add(printed_password(run_ensure_admin()))

    assert len(passwords) == 3


def test_existing_user_gets_the_new_password_when_the_file_is_new(
    login_file: Path,
) -> None:
    User.objects.create_user("admin", password="old-password-123")

    password = printed_password(run_ensure_admin())

    assert can_log_in("admin", password) is True
    assert can_log_in("admin", "old-password-123") is False
    assert User.objects.get(username="admin").is_superuser is True


def test_existing_user_keeps_a_changed_password_when_the_file_exists(
    login_file: Path,
) -> None:
    run_ensure_admin()
    admin = User.objects.get(username="admin")
    admin.set_password("changed-by-hand-456")
    admin.save(update_fields=["password"])

    run_ensure_admin()

    assert can_log_in("admin", "changed-by-hand-456") is True


def test_username_and_port_options_are_used(login_file: Path) -> None:
    output = run_ensure_admin("--username", "curator", "--port", "8123")

    assert output.startswith("Admin: http://127.0.0.1:8123/admin/  user: curator  ")
    assert User.objects.get(username="curator").is_superuser is True


def test_login_file_for_another_user_is_refused(login_file: Path) -> None:
    run_ensure_admin()

    refusal = "holds the login for 'admin', not 'curator'"
    with pytest.raises(CommandError, match=refusal):
        run_ensure_admin("--username", "curator")
