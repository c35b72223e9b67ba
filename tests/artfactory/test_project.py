"""Project-wide checks a newcomer and CI rely on."""
import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_models_and_migrations_agree():
    call_command("makemigrations", check=True, dry_run=True, verbosity=0)


def test_system_checks_pass():
    call_command("check", fail_level="WARNING")
