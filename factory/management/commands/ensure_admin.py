"""Make sure a superuser exists and print how to log in."""
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


def login_file() -> Path:
    """Where the generated login is kept; git-ignored, readable by its owner."""
    return Path(settings.ADMIN_LOGIN_FILE)


def read_login(path: Path) -> tuple[str, str]:
    """The username and password stored in ``path``."""
    fields = dict(
        line.split("=", 1) for line in path.read_text().splitlines() if "=" in line
    )
    try:
        return fields["user"], fields["password"]
    except KeyError as exc:
        raise CommandError(
            f"{path} has no {exc.args[0]}= line; delete it to start over"
        ) from exc


def write_login(path: Path, username: str, password: str) -> bool:
    """Store a new login with mode 0600; False if the file already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two commands racing must not end with two passwords.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(f"user={username}\npassword={password}\n")
    return True


def stored_login(path: Path, username: str) -> tuple[str, bool]:
    """The password for ``username``, generated once; True if just generated."""
    created = write_login(path, username, secrets.token_urlsafe(18))
    stored_user, password = read_login(path)
    if stored_user != username:
        raise CommandError(
            f"{path} holds the login for {stored_user!r}, not {username!r}; "
            "delete it or pass --username " + stored_user
        )
    return password, created


def ensure_superuser(username: str, password: str, reset_password: bool) -> None:
    """Create the superuser, or give an existing one admin rights."""
    user_model = get_user_model()
    user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
    if user is None:
        user_model.objects.create_superuser(username, email="", password=password)
        return
    user.is_active = user.is_staff = user.is_superuser = True
    fields = ["is_active", "is_staff", "is_superuser"]
    if reset_password:
        user.set_password(password)
        fields.append("password")
    user.save(update_fields=fields)


def ensure_admin(username: str) -> str:
    """Make sure ``username`` is a superuser with the stored password; return it.

    Safe to rerun: the password is generated once and kept in the login
    file. An existing user's password is reset only when that file is new.
    """
    password, created = stored_login(login_file(), username)
    ensure_superuser(username, password, reset_password=created)
    return password


def admin_url(port: int) -> str:
    """Where a local run serves the admin."""
    return f"http://127.0.0.1:{port}/admin/"


def login_line(username: str, password: str, port: int) -> str:
    """What to type into the admin login page."""
    return f"Admin: {admin_url(port)}  user: {username}  password: {password}"


class Command(BaseCommand):
    help = "Make sure a superuser exists; its password is kept in var/admin-login.txt."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--username",
            default=settings.ADMIN_USERNAME,
        )
        parser.add_argument(
            "--port", type=int, default=8000, help="port shown in the admin URL"
        )

    def handle(self, *args: Any, username: str, port: int, **options: Any) -> None:
        password = ensure_admin(username)
        self.stdout.write(login_line(username, password, port))
