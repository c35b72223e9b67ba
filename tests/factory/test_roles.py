"""The role table becomes groups, and stays so across upgrades."""
import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import CommandError, call_command

from factory.roles import LEAD, OPERATOR, ROLES, VIEWER, grant_role, sync_roles

pytestmark = pytest.mark.django_db


def held(name: str) -> set[str]:
    return {f"{app}.{code}" for app, code in Group.objects.get(name=name)
            .permissions.values_list("content_type__app_label", "codename")}


def test_migrating_leaves_each_role_group_with_exactly_its_table_row():
    for name, perms in ROLES.items():
        assert held(name) == perms


def test_roles_nest_and_spending_starts_at_operator():
    assert ROLES[VIEWER] < ROLES[OPERATOR] < ROLES[LEAD]
    assert not {p for p in ROLES[VIEWER] if not p.startswith("factory.view_")}
    spending = {"factory.place_order", "factory.retry_item"}
    assert spending <= ROLES[OPERATOR] and not spending & ROLES[VIEWER]
    assert "factory.raise_item_ceiling" in ROLES[LEAD] - ROLES[OPERATOR]
    assert "factory.change_factorymachine" in ROLES[LEAD] - ROLES[OPERATOR]
    assert "factory.change_project" in ROLES[LEAD] - ROLES[OPERATOR]
    # Users, groups and queues are for superusers, not for any role.
    assert not any(p.startswith("auth.") for p in ROLES[LEAD])


def test_sync_is_idempotent_and_puts_hand_edits_back():
    viewer = Group.objects.get(name=VIEWER)
    viewer.permissions.add(Permission.objects.get(codename="place_order"))
    Group.objects.get(name=OPERATOR).permissions.remove(
        Permission.objects.get(codename="retry_item"))
    Group.objects.get(name=LEAD).delete()
    sync_roles()
    sync_roles()
    for name, perms in ROLES.items():
        assert held(name) == perms
    assert Group.objects.filter(name__in=ROLES).count() == 3


def test_other_groups_are_left_alone():
    mine = Group.objects.create(name="reviewers")
    mine.permissions.add(Permission.objects.get(codename="change_product"))
    sync_roles()
    assert list(mine.permissions.values_list("codename", flat=True)) == ["change_product"]


@pytest.mark.django_db(transaction=True)
def test_migrate_on_upgrade_brings_the_groups_in_step():
    Group.objects.get(name=VIEWER).permissions.clear()
    call_command("migrate", verbosity=0)
    assert held(VIEWER) == ROLES[VIEWER]


def test_a_permission_missing_from_the_database_is_named(monkeypatch):
    monkeypatch.setitem(ROLES, VIEWER, ROLES[VIEWER] | {"factory.fly_order"})
    with pytest.raises(LookupError, match="factory.fly_order"):
        sync_roles()


def test_granting_a_role_replaces_the_last_one_and_gives_admin_access():
    user = User.objects.create_user("ana", password="x")
    other = Group.objects.create(name="reviewers")
    user.groups.add(other)
    grant_role(user, LEAD)
    grant_role(user, VIEWER)
    assert user.is_staff
    assert set(user.groups.values_list("name", flat=True)) == {VIEWER, "reviewers"}
    assert user.has_perm("factory.view_order") and not user.has_perm("factory.place_order")


def test_grant_role_command(capsys):
    User.objects.create_user("ben", password="x")
    call_command("grant_role", "ben", "operator")
    assert "ben: operator" in capsys.readouterr().out
    ben = User.objects.get(username="ben")
    assert ben.is_staff and ben.has_perm("factory.place_order")

    call_command("grant_role", "ben", "--revoke")
    assert "ben: no role" in capsys.readouterr().out
    assert not User.objects.get(username="ben").has_perm("factory.view_order")


def test_grant_role_command_creates_an_account_only_when_asked(capsys):
    with pytest.raises(CommandError, match="--create"):
        call_command("grant_role", "cleo", "viewer")
    assert not User.objects.filter(username="cleo").exists()

    call_command("grant_role", "cleo", "viewer", "--create")
    out = capsys.readouterr().out
    password = out.split("password: ")[1].split()[0]
    cleo = User.objects.get(username="cleo")
    assert cleo.check_password(password) and cleo.is_staff


def test_grant_role_command_refuses_nonsense():
    with pytest.raises(CommandError, match="name a role"):
        call_command("grant_role", "ben")
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("grant_role", "ben", "admin")


@pytest.mark.once
@pytest.mark.django_db(transaction=True)
def test_the_roles_migration_alone_makes_the_groups_and_permissions():
    """No post_migrate here: the migration must create the permissions itself."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("factory", "0003_machine_stars_order_seed_base")])
    Group.objects.filter(name__in=ROLES).delete()
    Permission.objects.filter(codename__in=["place_order", "retry_item"]).delete()
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("factory"))
    # Models added after the roles migration are granted by the sync that
    # post_migrate runs after every migrate.
    later = {"spendentry", "monthlycap"}
    for name, perms in ROLES.items():
        assert held(name) == {p for p in perms if p.split("_", 1)[1] not in later}
    sync_roles()
    for name, perms in ROLES.items():
        assert held(name) == perms
