from django.apps import AppConfig


class AdminExtConfig(AppConfig):
    name = "admin_ext"
    verbose_name = "Art Factory admin"

    def ready(self) -> None:
        from admin_ext import lean

        lean.install()
