"""Table of contents: one module per sidebar section."""
from admin_ext import catalog, inventory, orders, projects, spend, system  # noqa: F401
from django.contrib import admin

admin.site.index_title = "Dashboard"
