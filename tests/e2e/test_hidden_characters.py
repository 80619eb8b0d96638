"""In headless Chromium, a label holding U+202E (RIGHT-TO-LEFT OVERRIDE) reads in the order it is stored: the
letters after the override stand left to right on the screen, and the override itself is shown as a mark."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LABEL = "team=pay\u202enimda\u200b"

# The x position of each letter of `word` inside the element, measured with a Range over its text nodes:
# what a person sees, not the DOM's logical order.
LETTER_X = """(el, word) => {
  const xs = [];
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.data.indexOf(word);
    if (at < 0) continue;
    for (let i = at; i < at + word.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      xs.push(range.getBoundingClientRect().left);
    }
    break;
  }
  return xs;
}"""


def test_a_label_with_a_right_to_left_override_reads_in_order(page, admin_user, e2e_sim, e2e_instance):
    from apps.argocd import ArgoCDClient

    with ArgoCDClient(e2e_sim.url, token=e2e_sim.portal_token(), name=e2e_sim.name) as client:
        app = client.list_applications()[0]
        name = app["metadata"]["name"]
        app["metadata"]["labels"] = {**(app["metadata"].get("labels") or {}), "team": LABEL.split("=", 1)[1]}
        client.update_application(app)

    login(page, "root", "root-password-123")
    page.goto(f"/applications/{e2e_instance.name}/{name}/")
    badge = page.locator(".badge", has_text="team=pay")
    expect(badge).to_be_visible()
    xs = badge.evaluate(LETTER_X, "nimda")
    assert len(xs) == 5 and xs == sorted(xs), f"the letters stand at {xs}: the label reads reversed"
    mark = badge.locator(".hidden-char").first
    expect(mark).to_have_text("⟪U+202E⟫")
    expect(mark).to_have_attribute("title", "U+202E RIGHT-TO-LEFT OVERRIDE")
    text = badge.inner_text()
    assert "\u202e" not in text and text.startswith("team=pay⟪U+202E⟫nimda")
