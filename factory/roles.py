"""Roles: the one table of which group holds which permission.

Three groups, each containing the one before it:

- **viewer** browses, searches, downloads and exports everything shown,
  the spend ledger and its reports included;
- **operator** also writes, places, retries and cancels orders, curates
  products, and keeps templates, wildcards and tags;
- **lead** also keeps the catalog (providers and factory machines, their
  import), projects and their budgets, the monthly spending cap, and
  raises an order's item ceiling.

Users, groups and the job queues are for superusers, who hold no group.
``sync_roles`` runs from the roles migration and after every ``migrate``,
so an upgrade that changes this table changes the groups with it.
"""
from collections.abc import Iterable

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import DEFAULT_DB_ALIAS

VIEWER, OPERATOR, LEAD = "viewer", "operator", "lead"

# Every factory model the admin shows; each role may at least view them.
SHOWN = ["order", "orderitem", "product", "mediafile", "project", "tag",
         "factorymachine", "provider", "template", "wildcard", "spendentry",
         "monthlycap"]


def _perms(verbs: Iterable[str], models: Iterable[str]) -> set[str]:
    return {f"factory.{verb}_{model}" for verb in verbs for model in models}


_VIEWER = _perms(["view"], SHOWN)
_OPERATOR = _VIEWER | _perms(["add", "change"], ["order", "tag"]) | {
    "factory.delete_order",        # drafts only: placed orders are kept
    "factory.place_order", "factory.cancel_order", "factory.retry_item",
    "factory.change_product",      # favorites, ratings, tags, notes
} | _perms(["add", "change", "delete"], ["template", "wildcard"])
_LEAD = _OPERATOR | _perms(
    ["add", "change", "delete"], ["factorymachine", "provider", "project"]
) | _perms(["add", "change"], ["monthlycap"]) | {"factory.raise_item_ceiling", "factory.delete_tag", "factory.delete_product"}

ROLES: dict[str, frozenset[str]] = {
    VIEWER: frozenset(_VIEWER),
    OPERATOR: frozenset(_OPERATOR),
    LEAD: frozenset(_LEAD),
}


def _ensure_permissions(apps, using: str) -> None:
    """Create the default and custom permissions before they are granted.

    ``post_migrate`` normally makes them, which on a fresh database runs
    only after every migration; the real app configs are used because a
    migration's stand-ins lack the models module the creator checks.
    """
    for config in global_apps.get_app_configs():
        create_permissions(config, verbosity=0, using=using, apps=apps)


def _not_yet_made(apps) -> set[str]:
    """Models of the table that an early migration's state does not have yet.

    The roles migration runs before later ones add models; their
    permissions are granted by the ``post_migrate`` sync that follows.
    """
    if apps is global_apps:
        return set()
    made = {model._meta.model_name for model in apps.get_app_config("factory").get_models()}
    return set(SHOWN) - made


def sync_roles(apps=global_apps, using: str = DEFAULT_DB_ALIAS) -> None:
    """Make each role group hold exactly the permissions ``ROLES`` lists.

    Idempotent; permissions given to a role group by hand are taken away,
    so the table above stays the truth. Other groups are left alone.
    """
    _ensure_permissions(apps, using)
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    wanted = {perm for perm in set().union(*ROLES.values())
              if perm.split("_", 1)[1] not in _not_yet_made(apps)}
    found = {
        f"{perm.content_type.app_label}.{perm.codename}": perm
        for perm in permission_model.objects.using(using).select_related("content_type")
        .filter(codename__in={name.split(".", 1)[1] for name in wanted})
    }
    missing = wanted - found.keys()
    if missing:
        raise LookupError(f"roles name unknown permissions: {sorted(missing)}")
    for name, perms in ROLES.items():
        group, _ = group_model.objects.using(using).get_or_create(name=name)
        group.permissions.set([found[perm] for perm in sorted(perms & wanted)])


def sync_roles_after_migrate(sender, apps=global_apps, using=DEFAULT_DB_ALIAS,
                             **kwargs) -> None:
    """``post_migrate`` receiver: keep the groups in step on every upgrade."""
    sync_roles(apps=apps, using=using)


def grant_role(user, role: str) -> None:
    """Give ``user`` exactly ``role``: its group replaces any other role's
    (groups outside the table stay), and admin access (``is_staff``) comes
    with it."""
    from django.contrib.auth.models import Group

    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}")
    group = Group.objects.filter(name=role).first()
    if group is None:
        raise LookupError(f"the {role} group is missing; run manage.py migrate")
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    user.groups.remove(*Group.objects.filter(name__in=set(ROLES) - {role}))
    user.groups.add(group)


def revoke_roles(user) -> None:
    """Take every role away from ``user``; other groups stay."""
    from django.contrib.auth.models import Group

    user.groups.remove(*Group.objects.filter(name__in=ROLES))


def role_of(user) -> str:
    """The role ``user`` holds, for messages: the highest of its groups."""
    if user.is_superuser:
        return "superuser"
    held = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    return next((role for role in reversed(ROLES) if role in held), "no role")


ROLES_HINT = (
    "Add people to roles: manage.py grant_role USER viewer|operator|lead "
    "(--create for a new account), or Admin → Users → Groups"
)
