"""Prompts wherever they come from take the one path through the template
checks and the length cap: a template, a wildcard, "order again" of an
order or a product, and a product's seed variations."""
import hashlib
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from factory.models import (
    FactoryMachine, ItemStatus, MediaFile, Order, OrderItem, Product, Template, Wildcard,
)
from factory.ordering import place_order
from factory.parameters.schema import ParameterError
from factory.recipes import (
    import_wildcards, order_again, order_again_from_product, order_from_template,
)
from factory.variations import vary_seed
from tests.hostile.conftest import assert_clear, case

KIND = "prompt source"
LONG = "x" * 4001
PROMPTS = [
    ("too long", LONG, "over the limit of 4,000"),
    ("choose 99999 of 2", "{99999$$a|b}", "asks for 99999 picks"),
    ("two empty options", "a {|} kite", "more than one empty option"),
    ("unclosed variant", "a {kite", "'{' is never closed"),
    ("bell character", "a kite\x07", "control character (U+0007)"),
]


def machine() -> FactoryMachine:
    return FactoryMachine.objects.get(slug="demo-image")


def from_template(prompt: str) -> Order:
    template = Template.objects.create(name="hostile", machine=machine(), prompt=prompt)
    return order_from_template(template)


def from_order_again(prompt: str) -> Order:
    return order_again(Order.objects.create(machine=machine(), prompt=prompt))


def from_wildcard(prompt: str) -> Order:
    Wildcard.objects.create(name="hostile", values=["calm", prompt])
    return Order.objects.create(machine=machine(), prompt="a __hostile__ sea")


def _product(prompt: str) -> Product:
    """A product whose call was sent with ``prompt`` (a provider's echo)."""
    order = Order.objects.create(machine=machine(), prompt="a kite", status="done")
    sent = {"prompt": prompt, "width": 64, "height": 64, "seed": 7}
    item = OrderItem.objects.create(order=order, machine=machine(), index=0,
                                    parameters=sent, seed=7, status=ItemStatus.COMPLETED)
    media = MediaFile.objects.create(content_hash=hashlib.sha256(prompt.encode()).hexdigest(),
                                     file="files/x.png", media_type="image",
                                     content_type="image/png", size=1)
    return Product.objects.create(item=item, media=media, machine=machine(),
                                  media_type="image", prompt=prompt, parameters=sent,
                                  seed=7, cost=Decimal(0))


def from_product_again(prompt: str) -> Order:
    return order_again_from_product(_product(prompt))


def from_vary_seed(prompt: str) -> Order:
    return vary_seed(_product(prompt), 3)


SOURCES = {"template": from_template, "order again": from_order_again,
           "wildcard": from_wildcard}
# A product's prompt is repeated verbatim: its syntax is escaped, so only
# the text itself (its length, its characters) can be refused.
VERBATIM = {"product again": from_product_again, "vary seed": from_vary_seed}
CASES = [case(KIND, f"{source}: {name}", (source, text), says)
         for source in SOURCES for name, text, says in PROMPTS]
CASES += [case(KIND, f"{source}: {name}", (source, text), says)
          for source in VERBATIM for name, text, says in PROMPTS
          if name in ("too long", "bell character")]
# Escaping braces and dollars makes a long prompt longer: still one cap.
CASES += [case(KIND, f"{source}: braces grow past the cap", (source, "{}" * 1500 + "$" * 1001),
               "over the limit of 4,000") for source in VERBATIM]


@pytest.mark.parametrize("refusal", CASES, ids=[c.id for c in CASES])
def test_every_prompt_source_is_refused_when_placed(refusal, untouched):
    source, text = refusal.value
    draft = {**SOURCES, **VERBATIM}[source](text)
    with untouched():
        with pytest.raises(ParameterError) as refused:
            place_order(draft)
    assert_clear(str(refused.value), refusal)
    draft.refresh_from_db()
    assert (draft.status, draft.items.count()) == ("draft", 0)


def test_a_verbatim_product_prompt_makes_exactly_one_prompt(seeded, db):
    draft = from_product_again("a {kite|gull} for $5 __colors__ ${x}")
    placed = place_order(draft)
    assert placed.items.get().parameters["prompt"] == "a {kite|gull} for $5 __colors__ ${x}"


FILES = [
    case("wildcard file", "not UTF-8", ("w.txt", b"\xff\xfe\xfa"), "not UTF-8 text"),
    case("wildcard file", "wrong suffix", ("w.exe", b"red"), "wildcard files end in .txt"),
    case("wildcard file", "NUL in a value", ("w.txt", b"red\x00blue"), "control character"),
    case("wildcard file", "escape in a value", ("w.txt", b"\x1b[2Jred"), "control character"),
    case("wildcard file", "lone surrogate in JSON", ("w.json", b'{"w": ["\\ud800"]}'),
         "lone surrogate"),
    case("wildcard file", "JSON not a mapping", ("w.json", b"42"), "expected a mapping"),
    case("wildcard file", "bad name", ("w.json", b'{"a b": ["red"]}'), "wildcard name 'a b'"),
]


@pytest.mark.parametrize("refusal", FILES, ids=[c.id for c in FILES])
def test_a_hostile_wildcard_file_is_refused_and_nothing_is_saved(refusal, untouched):
    before = Wildcard.objects.count()
    with untouched():
        with pytest.raises(ValidationError) as refused:
            import_wildcards(*refusal.value)
    assert_clear(" ".join(refused.value.messages), refusal)
    assert Wildcard.objects.count() == before
