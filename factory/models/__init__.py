"""Domain models, one module per area."""
from factory.models.catalog import FactoryMachine, Modality, PriceUnit, Provider
from factory.models.inventory import MediaFile, Product
from factory.models.lifecycle import (
    FINISHED, STOPPABLE, TRANSITIONS, ItemStatus, TransitionError,
)
from factory.models.orders import (
    EventKind,
    ItemEvent,
    Order,
    OrderItem,
    OrderStatus,
    PromptMode,
    SeedStrategy,
)
from factory.models.projects import Project, Tag
from factory.models.recipes import Template, Wildcard
from factory.models.spend import MonthlyCap, SpendEntry, SpendSource

__all__ = [
    "EventKind", "FINISHED", "FactoryMachine", "ItemEvent", "ItemStatus", "MediaFile",
    "Modality", "MonthlyCap", "Order", "OrderItem", "OrderStatus", "PriceUnit", "Product",
    "PromptMode", "Project", "Provider", "STOPPABLE", "SeedStrategy", "SpendEntry", "SpendSource", "TRANSITIONS",
    "Tag", "Template", "TransitionError", "Wildcard",
]
