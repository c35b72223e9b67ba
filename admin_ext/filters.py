"""List filters shared by several sections."""
from django.contrib import admin

from factory.models import FactoryMachine


class MachineFilter(admin.RelatedFieldListFilter):
    """Machines labelled with their provider, read in one query."""

    def field_choices(self, field, request, model_admin):
        machines = FactoryMachine.objects.select_related("provider")
        return [(machine.pk, str(machine)) for machine in machines]
