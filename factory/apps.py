from django.apps import AppConfig
from django.db.models.signals import post_migrate


class FactoryConfig(AppConfig):
    name = "factory"
    verbose_name = "Art Factory"

    def ready(self) -> None:
        from factory.roles import sync_roles_after_migrate

        # Once per migrate, after this app's tables and permissions exist.
        post_migrate.connect(sync_roles_after_migrate, sender=self,
                             dispatch_uid="factory.sync_roles")
