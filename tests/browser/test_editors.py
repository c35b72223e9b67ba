"""Build a sweep and a prompt with the editors only, in a real browser."""
import json
import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from factory.models import FactoryMachine, Order, SeedStrategy, Wildcard
from factory.ordering import count_order_items

from tests.browser.test_demo_order_flow import SCREENSHOTS

EXPECTED_SWEEPS = [
    [{"field": "prompt", "values": ["a fox in fresh snow", "a heron at dawn"]}],
    [{"field": "seed", "values": [20, 30, 40]}],
]

# The live preview listens for bubbling input events on the form: record
# which named fields fired them and the value each held at that moment.
EDITED_FIELDS_SPY = """
window.edits = {};
document.querySelector("#order_form").addEventListener("input", (event) => {
    if (event.target.name) window.edits[event.target.name] = event.target.value;
});
"""


@pytest.fixture
def draft(transactional_db, catalog):
    """A superuser, two wildcards and a draft demo-image order."""
    User.objects.create_superuser("ada", "ada@example.com", "correct-horse-battery")
    Wildcard.objects.create(name="lighting/golden", values=["golden hour"])
    Wildcard.objects.create(name="lighting/overcast", values=["overcast sky"])
    Wildcard.objects.create(name="palette", values=["teal", "rust"])
    return Order.objects.create(
        title="Shoreline studies",
        machine=FactoryMachine.objects.get(slug="demo-image"),
        prompt="a ${subject} on the shore, ${mood}",
        tokens={"mood": "misty"},
        seed_strategy=SeedStrategy.FIXED, seed=7,
    )


def _log_in(page, live_server) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))


def _texts(locator) -> list[str]:
    return [" ".join(text.split()) for text in locator.all_inner_texts()]


def _add_token(page) -> None:
    editor = page.locator(".af-tokens")
    editor.get_by_role("button", name="Add a token").click()
    key = editor.get_by_label("Token name").last
    expect(key).to_be_focused()
    key.press_sequentially("subject")
    key.press("Enter")
    value = editor.get_by_label("Token value").last
    expect(value).to_be_focused()
    value.press_sequentially("heron")


def _screenshot(locator, name: str) -> None:
    """The field row, centred so the sticky save bar covers none of it."""
    locator.evaluate("row => row.scrollIntoView({block: 'center'})")
    locator.screenshot(path=str(SCREENSHOTS / name))


def _build_sweep(page) -> None:
    editor = page.locator(".af-sweeps")
    editor.get_by_role("button", name="Add a group").click()
    first = editor.locator("section.af-group").nth(0)
    first.locator("select").select_option("prompt")
    first.locator("textarea.af-values").fill("a fox in fresh snow\na heron at dawn")
    editor.get_by_role("button", name="Multiply by a group").click()
    second = editor.locator("section.af-group").nth(1)
    second.locator("select").select_option("seed")
    second.get_by_role("button", name="Range").click()
    second.get_by_role("spinbutton", name="From").fill("20")
    second.get_by_role("spinbutton", name="To").fill("40")
    second.get_by_role("spinbutton", name="Step").fill("10")
    assert second.locator(".af-row__preview").inner_text() == "20, 30, 40"
    assert second.locator(".af-group__size").inner_text() == "3 values"
    assert editor.locator(".af-total strong").inner_text() == "2 × 3 = 6 combinations"


def _pick_wildcard(page) -> None:
    prompt = page.locator("textarea[name=prompt]")
    prompt.click()
    prompt.press("End")
    prompt.press_sequentially(", __light")
    options = page.get_by_role("listbox", name="Wildcards").get_by_role("option")
    assert options.locator(".af-suggest__name").all_inner_texts() == [
        "__lighting/golden__", "__lighting/overcast__"]
    page.locator(".field-prompt details summary").click()
    prompt.focus()
    _screenshot(page.locator(".field-prompt"), "prompt-editor.png")
    prompt.press("ArrowDown")
    prompt.press("Enter")
    assert prompt.input_value() == (
        "a ${subject} on the shore, ${mood}, __lighting/overcast__")
    expect(options.first).to_be_hidden()


@pytest.mark.django_db(transaction=True)
def test_sweep_and_prompt_built_with_the_editors(page, live_server, draft):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    _log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/factory/order/{draft.pk}/change/")

    page.evaluate(EDITED_FIELDS_SPY)
    tokens = page.locator(".field-prompt .af-token-use")
    assert _texts(tokens) == ["${subject} not set", "${mood} misty"]
    _pick_wildcard(page)
    _add_token(page)
    assert _texts(tokens) == ["${subject} heron", "${mood} misty"]

    _build_sweep(page)
    _screenshot(page.locator(".field-sweeps"), "sweep-editor.png")
    edits = page.evaluate("window.edits")
    assert json.loads(edits["sweeps"]) == EXPECTED_SWEEPS
    assert json.loads(edits["tokens"]) == {"mood": "misty", "subject": "heron"}
    assert edits["prompt"].endswith("__lighting/overcast__")
    page.click("button[name=_continue]")
    page.wait_for_url(re.compile(r".*/change/$"))
    assert page.locator(".errornote").count() == 0

    draft.refresh_from_db()
    assert draft.sweeps == EXPECTED_SWEEPS
    assert draft.tokens == {"mood": "misty", "subject": "heron"}
    assert draft.prompt.endswith("__lighting/overcast__")
    assert count_order_items(draft) == 6
    # Reopened, the saved sweep comes back as the same rows.
    page.reload()
    assert page.locator(".af-sweeps .af-total strong").inner_text() == (
        "2 × 3 = 6 combinations")
