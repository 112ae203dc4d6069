"""Contradictions in the forms issue 17 found missed on an unseen help center: ranges, a modal or auxiliary verb
denied, a denial in a relative clause, and answers in list items; and their agreeing look-alikes."""

from __future__ import annotations

import pytest
from builders import make_article
from test_contradictions import detect


def _checks(one: str, other: str) -> list[str]:
    return [f.check for f in detect([make_article("a", "Shipping", one), make_article("b", "Delivery", other)])]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Delivery of the hardware key takes 2-3 months.", "Delivery of the hardware key takes 2-6 months."),
        ("Removal requests are processed within 7 to 14 days.", "Removal requests are processed within 7 to 21 days."),
        ("You can use the VPN on five to ten devices.", "You can use the VPN on five to twenty devices."),
    ],
)
def test_ranges_with_different_ends_are_a_quantity_contradiction(one, other):
    assert _checks(one, other) == ["quantity"]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Delivery of the hardware key takes 2-3 months.", "Delivery of the hardware key takes 2 to 3 months."),
        ("Removal requests are processed within 7 to 14 days.", "Removal requests are processed within 1-2 weeks."),
        (
            "Delivery of the hardware key takes 2-3 months.",
            "Delivery of the hardware key takes between 2 and 3 months.",
        ),
    ],
)
def test_the_same_range_written_another_way_agrees(one, other):
    assert _checks(one, other) == []


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("After the update you will miss the old sidebar.", "After the update you will not miss the old sidebar."),
        ("Members can export the shared vault.", "Members cannot export the shared vault."),
        ("You should share the recovery code with support.", "You should not share the recovery code with support."),
        ("The extension doesn't sync your bookmarks.", "The extension does sync your bookmarks."),
        ("Use our browser and apps, which do not track you.", "Use our browser and apps, which do track you."),
    ],
)
def test_a_denied_modal_or_auxiliary_verb_is_a_polarity_contradiction(one, other):
    assert _checks(one, other) == ["polarity"]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("After the update you will not miss the old sidebar.", "After the update you won't miss the old sidebar."),
        ("Members cannot export the shared vault.", "Members can't export the shared vault."),
        # a condition, not a claim: the clause an "if" opens may differ
        ("If you do not see the code, check your spam folder.", "If you do see the code, check your spam folder."),
    ],
)
def test_contracted_denials_and_conditions_are_quiet(one, other):
    assert _checks(one, other) == []


def test_a_list_item_is_read_as_its_own_statement():
    one = "Before you start:\n\n- Admins can reset a member's password.\n- Members can export the shared vault."
    other = "Before you start:\n\n- Admins can reset a member's password.\n- Members cannot export the shared vault."

    findings = detect([make_article("a", "Roles", one), make_article("b", "Permissions", other)])

    assert [f.check for f in findings] == ["polarity"]
    assert {e.text for e in findings[0].evidence} == {
        "- Members can export the shared vault.",
        "- Members cannot export the shared vault.",
    }


def test_figures_in_list_items_are_compared():
    one = "Limits:\n\n- Up to 5 devices per account\n- Up to 10 shared folders"
    other = "Limits:\n\n- Up to 8 devices per account\n- Up to 10 shared folders"

    assert _checks(one, other) == ["quantity"]
