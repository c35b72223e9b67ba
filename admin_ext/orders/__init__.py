"""Production section: ordering, watching orders, their items."""
from admin_ext.orders import admin  # noqa: F401
