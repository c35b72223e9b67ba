"""Put a person in a role (viewer, operator, lead) from the command line."""
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from factory.roles import ROLES, grant_role, revoke_roles, role_of


class Command(BaseCommand):
    help = ("Give USER one role (viewer, operator or lead), replacing any other; "
            "--revoke takes every role away.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", nargs="?", choices=sorted(ROLES))
        parser.add_argument(
            "--create", action="store_true",
            help="create the account if it does not exist and print its password",
        )
        parser.add_argument("--revoke", action="store_true",
                            help="take every role away instead")

    @transaction.atomic
    def handle(self, *args: Any, username: str, role: str | None, create: bool,
               revoke: bool, **options: Any) -> None:
        if revoke == bool(role):
            raise CommandError("name a role (viewer, operator or lead), or pass --revoke")
        user_model = get_user_model()
        user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
        password = ""
        if user is None:
            if not create or revoke:
                raise CommandError(
                    f"no user {username!r}; pass --create to make the account")
            password = secrets.token_urlsafe(12)
            user = user_model.objects.create_user(username, password=password)
        if revoke:
            revoke_roles(user)
        else:
            try:
                grant_role(user, role)
            except LookupError as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(f"{username}: {role_of(user)}")
        if password:
            self.stdout.write(f"password: {password}  (shown once; change it after signing in)")
