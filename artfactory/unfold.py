"""django-unfold configuration: data only, callbacks as dotted paths."""
from django.urls import reverse_lazy

UNFOLD = {
    "SITE_TITLE": "Art Factory",
    "SITE_HEADER": "Art Factory",
    "SITE_SUBHEADER": "AI image, video and audio production",
    "SITE_SYMBOL": "palette",
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "DASHBOARD_CALLBACK": "admin_ext.dashboard.dashboard_callback",
    "STYLES": [
        "admin_ext.assets.order_form_css", "admin_ext.assets.editors_css",
        "admin_ext.assets.progress_css", "admin_ext.assets.machines_css",
        "admin_ext.assets.inventory_css", "admin_ext.assets.panel_css",
        "admin_ext.assets.compare_css",
    ],
    "SCRIPTS": [
        "admin_ext.assets.editors_js", "admin_ext.assets.picker_js",
        "admin_ext.assets.panel_js", "admin_ext.assets.curation_js",
    ],
    "COLORS": {
        "primary": {
            "50": "oklch(97.7% .014 308.299)",
            "100": "oklch(94.6% .033 307.174)",
            "200": "oklch(90.2% .063 306.703)",
            "300": "oklch(82.7% .119 306.383)",
            "400": "oklch(71.4% .203 305.504)",
            "500": "oklch(62.7% .265 303.9)",
            "600": "oklch(55.8% .288 302.321)",
            "700": "oklch(49.6% .265 301.924)",
            "800": "oklch(43.8% .218 303.724)",
            "900": "oklch(38.1% .176 304.987)",
            "950": "oklch(29.1% .149 302.717)",
        },
    },
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        "navigation": [
            {
                "title": "Production",
                "items": [
                    {"title": "Dashboard", "icon": "dashboard",
                     "link": reverse_lazy("admin:index")},
                    {"title": "Orders", "icon": "receipt_long",
                     "link": reverse_lazy("admin:factory_order_changelist")},
                    {"title": "Order items", "icon": "list_alt",
                     "link": reverse_lazy("admin:factory_orderitem_changelist")},
                ],
            },
            {
                "title": "Inventory",
                "items": [
                    {"title": "Products", "icon": "photo_library",
                     "link": reverse_lazy("admin:factory_product_changelist")},
                    {"title": "Projects", "icon": "folder",
                     "link": reverse_lazy("admin:factory_project_changelist")},
                    {"title": "Tags", "icon": "sell",
                     "link": reverse_lazy("admin:factory_tag_changelist")},
                    {"title": "Media files", "icon": "perm_media",
                     "link": reverse_lazy("admin:factory_mediafile_changelist")},
                ],
            },
            {
                "title": "Catalog",
                "items": [
                    {"title": "Providers", "icon": "cloud",
                     "link": reverse_lazy("admin:factory_provider_changelist")},
                    {"title": "Factory machines", "icon": "precision_manufacturing",
                     "link": reverse_lazy("admin:factory_factorymachine_changelist")},
                    {"title": "Templates", "icon": "content_copy",
                     "link": reverse_lazy("admin:factory_template_changelist")},
                    {"title": "Wildcards", "icon": "casino",
                     "link": reverse_lazy("admin:factory_wildcard_changelist")},
                ],
            },
            {
                "title": "System",
                "items": [
                    {"title": "Users", "icon": "person",
                     "link": reverse_lazy("admin:auth_user_changelist")},
                    {"title": "Groups", "icon": "group",
                     "link": reverse_lazy("admin:auth_group_changelist")},
                    {"title": "Queues", "icon": "stacks",
                     "link": reverse_lazy("django_rq:home"),
                     "permission": "admin_ext.permissions.is_superuser"},
                ],
            },
        ],
    },
}
