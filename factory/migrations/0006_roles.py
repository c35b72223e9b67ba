"""Role groups (viewer, operator, lead) and the spending permissions.

The groups are written by ``factory.roles.sync_roles``, the same function
that keeps them in step after every ``migrate``.
"""
from django.db import migrations


def create_roles(apps, schema_editor):
    from factory.roles import sync_roles

    sync_roles(apps=apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('factory', '0005_inventory_search_indexes'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='order',
            options={'ordering': ['-created_at'], 'permissions': [('raise_item_ceiling', "Can raise an order's item ceiling"), ('place_order', 'Can place orders, which spends'), ('cancel_order', 'Can cancel orders and their items')]},
        ),
        migrations.AlterModelOptions(
            name='orderitem',
            options={'ordering': ['order', 'index'], 'permissions': [('retry_item', 'Can retry failed items, which spends')]},
        ),
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
