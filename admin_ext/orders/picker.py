"""The machine picker: the first step of a new order, and machine stars."""
from dataclasses import dataclass, field
import re

from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from factory.models import FactoryMachine, MediaFile, Modality, Product

# With any of these the add page is the order form, not the picker.
FORM_PARAMS = frozenset({"machine", "template", "source", "source_order", "_popup"})
MODALITY_ICONS = {
    Modality.IMAGE: "image", Modality.VIDEO: "movie", Modality.AUDIO: "graphic_eq",
}
STAR_TEMPLATE = "admin_ext/orders/_partials/star.html"
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


@dataclass
class MachineCard:
    """What one picker card shows."""

    machine: FactoryMachine
    add_url: str
    summary: str
    sample_url: str
    starred: bool
    missing_key: str | None
    icon: str


@dataclass
class ProviderGroup:
    name: str
    cards: list[MachineCard] = field(default_factory=list)


@dataclass
class ModalityGroup:
    slug: str
    title: str
    providers: list[ProviderGroup] = field(default_factory=list)

    @property
    def icon(self) -> str:
        return MODALITY_ICONS.get(self.slug, "deployed_code")

    @property
    def count(self) -> int:
        return sum(len(group.cards) for group in self.providers)


def wants_picker(request: HttpRequest) -> bool:
    """A bare GET of the add page picks a machine before showing the form."""
    return request.method == "GET" and not FORM_PARAMS.intersection(request.GET)


def first_sentence(text: str) -> str:
    """The description's first sentence; ``FLUX.1 dev`` is not a sentence end."""
    text = " ".join(text.split())
    match = _SENTENCE_END.search(text)
    return text[: match.end()] if match else text


def picker_machines(user_id: int, query: str = ""):
    """Active machines with their newest thumbnail and the user's star: one query."""
    newest = (
        Product.objects.filter(machine=OuterRef("pk"))
        .exclude(media__thumbnail="")
        .order_by("-created_at", "-id")
        .values("media__thumbnail")[:1]
    )
    stars = FactoryMachine.starred_by.through.objects.filter(
        factorymachine_id=OuterRef("pk"), user_id=user_id
    )
    machines = (
        FactoryMachine.objects.active()
        .select_related("provider")
        .annotate(sample=Subquery(newest), is_starred=Exists(stars))
        .order_by("provider__name", "name", "pk")
    )
    if query:
        machines = machines.filter(
            Q(name__icontains=query) | Q(provider__name__icontains=query)
            | Q(endpoint_id__icontains=query)
        )
    return machines


def _card(machine: FactoryMachine, add_url: str) -> MachineCard:
    storage = MediaFile._meta.get_field("thumbnail").storage
    return MachineCard(
        machine=machine,
        add_url=f"{add_url}?machine={machine.pk}",
        summary=first_sentence(machine.description),
        sample_url=storage.url(machine.sample) if machine.sample else "",
        starred=machine.is_starred,
        missing_key=machine.provider.missing_key,
        icon=MODALITY_ICONS.get(machine.modality, "deployed_code"),
    )


def group_cards(
    cards: list[MachineCard],
) -> tuple[list[MachineCard], list[ModalityGroup]]:
    """Starred cards first, the rest by modality then provider."""
    starred = [card for card in cards if card.starred]
    groups = {slug: ModalityGroup(slug, label) for slug, label in Modality.choices}
    for card in cards:
        if card.starred:
            continue
        providers = groups[card.machine.modality].providers
        if not providers or providers[-1].name != card.machine.provider.name:
            providers.append(ProviderGroup(card.machine.provider.name))
        providers[-1].cards.append(card)
    return starred, [group for group in groups.values() if group.count]


def picker_response(model_admin: ModelAdmin, request: HttpRequest) -> TemplateResponse:
    """The card page shown by a bare "New order"; each card opens the form."""
    query = request.GET.get("q", "").strip()
    add_url = reverse("admin:factory_order_add")
    cards = [_card(m, add_url) for m in picker_machines(request.user.pk, query)]
    starred, groups = group_cards(cards)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "New order: pick a machine",
        "opts": model_admin.model._meta,
        "query": query,
        "starred": starred,
        "groups": groups,
        "card_count": len(cards),
        "picker_url": add_url,
    }
    return TemplateResponse(request, "admin_ext/orders/picker.html", context)


def star_view(
    model_admin: ModelAdmin, request: HttpRequest, machine_id: int
) -> HttpResponse:
    """Star (``star=1``) or unstar (``star=0``) a machine; answer the button."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    machine = get_object_or_404(FactoryMachine.objects.active(), pk=machine_id)
    starred = request.POST.get("star") == "1"
    if starred:
        machine.starred_by.add(request.user)
    else:
        machine.starred_by.remove(request.user)
    context = {"machine": machine, "starred": starred}
    return TemplateResponse(request, STAR_TEMPLATE, context)
