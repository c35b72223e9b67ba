"""Indexes that keep the products list fast at 100,000 rows.

- (-created_at, -id), the grid's order, so a page is read from an index;
- on PostgreSQL only, pg_trgm GIN indexes on UPPER(prompt) and UPPER(notes),
  the expressions Django's icontains compares, for search (factory/search.py).
  SQLite has no such index type and searches by scanning, which is fine at
  the sizes SQLite serves.
"""
from django.db import migrations, models

TRIGRAM_INDEXES = {
    "factory_product_prompt_trgm": "prompt",
    "factory_product_notes_trgm": "notes",
}


def create_trigram_indexes(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON factory_product "
            f"USING gin (UPPER({column}) gin_trgm_ops)"
        )


def drop_trigram_indexes(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ("factory", "0004_product_archived_at"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="product",
            name="factory_pro_created_dc7d5a_idx",
        ),
        migrations.AddIndex(
            model_name="product",
            index=models.Index(fields=["-created_at", "-id"],
                               name="factory_pro_created_0c5c46_idx"),
        ),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes),
    ]
