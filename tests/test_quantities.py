"""Quantities read from help-center sentences: units normalised so equal figures compare equal."""

from __future__ import annotations

import pytest

from kbcurator.analysis.quantities import (
    Quantity,
    agree,
    comparable,
    extract_quantities,
    mask_quantities,
    relative_difference,
    restates,
)


def one(sentence: str) -> Quantity:
    found = extract_quantities(sentence)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    "sentence",
    ["Refunds take 14 days.", "Refunds take two weeks.", "Refunds take 2 weeks.", "Refunds take fourteen days."],
)
def test_the_same_duration_written_four_ways_has_one_value(sentence):
    assert one(sentence).value == one("Refunds take 14 days.").value
    assert agree(one(sentence), one("Refunds take 14 days."))
    assert one(sentence).describe() == "14 days"


def test_different_durations_conflict():
    thirty, fourteen = one("within 30 days"), one("within 14 days")
    assert comparable(thirty, fourteen)
    assert not agree(thirty, fourteen)
    assert relative_difference(thirty, fourteen) == pytest.approx(16 / 30)


@pytest.mark.parametrize(
    ("sentence", "text", "described"),
    [
        ("Invite a dozen users.", "a dozen users", "12 users"),
        ("It lasts twenty-one days.", "twenty-one days", "21 days"),
        ("Wait half an hour.", "half an hour", "30 minutes"),
        ("You will hear from us within a week.", "a week", "at most 7 days"),
        ("Two hundred and fifty users signed up.", "Two hundred and fifty users", "250 users"),
        ("around 7 000 reported cases", "7 000 reported cases", "about 7000 cases"),
    ],
)
def test_numbers_written_as_words_count(sentence, text, described):
    quantity = one(sentence)
    assert quantity.text == text
    assert sentence[quantity.span[0] : quantity.span[1]] == text
    assert quantity.describe() == described


@pytest.mark.parametrize(
    "sentence", ["Symptoms appear 2-14 days after exposure.", "between 2 and 14 days", "2 to 14 days"]
)
def test_ranges_keep_both_ends(sentence):
    quantity = one(sentence)
    assert quantity.is_range
    assert quantity.describe() == "2-14 days"


def test_ranges_agree_when_they_overlap_and_a_value_inside_a_range_agrees():
    assert agree(one("1-14 days"), one("2-14 days"))
    assert agree(one("5 days"), one("2-14 days"))
    assert agree(one("up to 14 days"), one("2-14 days"))
    assert not agree(one("30 days"), one("2-14 days"))
    assert not agree(one("15-20 days"), one("2-14 days"))


def test_a_limit_is_compared_by_its_value():
    assert one("up to 30 days").qualifier == "at_most"
    assert one("at least 20 seconds").qualifier == "at_least"
    assert agree(one("up to 30 days"), one("30 days"))
    assert not agree(one("up to 30 days"), one("up to 14 days"))


def test_data_sizes_are_binary_and_tolerate_decimal_prefixes():
    gigabyte = one("Files up to 1 GB")
    assert agree(gigabyte, one("Files up to 1024 MB"))
    assert agree(gigabyte, one("Files up to 1000 MB"))  # 2.3% apart: the two meanings of "GB"
    assert not agree(gigabyte, one("Files up to 500 MB"))
    assert not comparable(one("a 256-bit key"), gigabyte)  # bits are not bytes


def test_prices_compare_only_in_the_same_currency_and_period():
    monthly = one("Premium costs $10/month.")
    assert monthly.unit == "USD/month"
    assert monthly.describe() == "USD 10/month"
    assert not agree(monthly, one("Premium costs $12 per month."))
    assert not comparable(monthly, one("Premium costs $100 per year."))
    assert not comparable(one("It costs €5."), one("It costs $5."))
    assert agree(one("It costs 10 USD."), one("It costs $10."))


def test_percentages_lengths_and_temperatures_are_normalised():
    assert agree(one("50% of users"), one("50 percent of users"))
    assert agree(one("keep 6 feet apart"), one("keep 2 meters apart"))  # rounded conversions agree
    assert not agree(one("at least 6 feet"), one("at least 1 metre"))
    fever = extract_quantities("a fever of 100.4°F (38°C)")
    assert [q.dimension for q in fever] == ["temperature", "temperature"]
    assert agree(*fever)


def test_versions_are_keyed_by_product():
    ios13, ios14 = one("Requires iOS 13 or later."), one("Requires iOS 14 or later.")
    assert ios13.qualifier == "at_least"
    assert comparable(ios13, ios14)
    assert not agree(ios13, ios14)
    assert not comparable(ios13, one("Requires Android 13."))
    assert agree(one("version 2.3"), one("version 2.3.0"))


def test_counts_are_keyed_by_the_noun_they_count():
    five_users, ten_users = one("Share with 5 users."), one("Share with 10 users.")
    assert five_users.unit == "user"
    assert not agree(five_users, ten_users)
    assert not comparable(five_users, one("Install on 5 devices."))
    assert one("Eighteen public health labs are testing.").unit == "lab"
    assert one("Sync up to 2000 users at once.").describe() == "at most 2000 users"  # not a year
    assert not agree(one("Authy shows a 6-digit code."), one("Authy shows a 12-digit code."))


@pytest.mark.parametrize(
    "sentence",
    [
        "COVID-19 is a new disease.",
        "Step 3. Select Save.",
        "Countries with a Level 3 travel health notice.",
        "In 2020 the app changed.",
        "Download the mp3 file.",
        "Take your temperature twice a day.",
        "Press 5 to continue.",
        "It is one of the ways to stay safe.",
    ],
)
def test_names_labels_years_and_bare_numbers_are_not_quantities(sentence):
    assert extract_quantities(sentence) == []


def test_masking_hides_the_figures_so_equal_sentences_read_the_same():
    assert mask_quantities("Refunds take 14 days.") == mask_quantities("Refunds take two weeks.")
    assert mask_quantities("Refunds take 14 days.") == "Refunds take <duration>."


def test_two_ranges_restate_each_other_only_with_the_same_ends():
    assert restates(one("2-3 months"), one("between 2 and 3 months"))
    assert restates(one("2 to 14 days"), one("2-14 days"))
    assert not restates(one("2-3 months"), one("2-6 months"))  # they overlap, so agree() alone lets them pass
    assert agree(one("2-3 months"), one("2-6 months"))
    assert restates(one("5 days"), one("2-14 days"))  # a value inside a range still restates it
    assert not restates(one("30 days"), one("2-14 days"))


def test_ranges_whose_ends_moved_are_as_far_apart_as_the_ends():
    assert relative_difference(one("2-3 months"), one("2-6 months")) == pytest.approx(0.5)
    assert relative_difference(one("5 days"), one("2-14 days")) == 0.0


def test_a_capitalised_name_is_what_a_number_counts_unless_a_plain_noun_follows():
    assert one("Pin five Shortcuts to the widget.").unit == "shortcut"
    assert one("Pin five Shortcuts to the widget.").value == 5
    assert one("Sign in on 3 Linux laptops.").unit == "laptop"  # the name describes the laptops
    assert extract_quantities("Press 3 Enter to confirm.") == []  # a capitalised word that is not a plural


def test_a_second_figure_that_leaves_its_noun_to_the_first_is_the_other_end():
    elided = one("The widget shows three Shortcuts or 9.")
    assert (elided.value, elided.high, elided.unit) == (3, 9, "shortcut")
    assert restates(elided, one("The widget shows 3 or 9 Shortcuts."))
    assert not restates(elided, one("The widget shows three Shortcuts or 18."))
    kept = one("Backups are kept 14 days or 28.")
    assert (kept.value, kept.high) == (one("14 days").value, one("28 days").value)
    # a second figure with a noun or unit of its own is a quantity of its own
    assert [q.unit for q in extract_quantities("Invite 2 editors or 4 viewers.")] == ["editor", "viewer"]
    assert len(extract_quantities("Backups are kept 14 days or 2 weeks.")) == 2


def test_a_version_compared_with_a_number_keeps_the_comparison():
    older = one("Tablets on a Kobo version prior to 4.2 need the old app.")
    assert (older.dimension, older.unit, older.qualifier) == ("version", "kobo", "at_most")
    assert one("Firefox versions newer than 115 sync tabs.").qualifier == "at_least"
    assert not agree(older, one("Tablets on a Kobo version prior to 4.6 need the old app."))
    # a comma right after the number ends the clause; it is not part of the number
    assert one("If your phone runs iOS 16, update the app.").describe() == "ios 16"


def test_a_release_name_and_a_bracketed_number_is_a_version_of_the_product():
    ventura = one("The scanner needs macOS Ventura (13.0) or later.")
    assert (ventura.dimension, ventura.unit) == ("version", "macos")
    assert agree(ventura, one("The scanner needs macOS 13 or later."))
    # the bracket must close on the number: "64-bit" is a build, not a release
    assert [q.dimension for q in extract_quantities("Get the Windows (64-bit) installer.")] == ["data"]


def test_a_named_settings_number_is_keyed_by_the_setting():
    batch = one("By default, QUEUE_BATCH_SIZE=50 .")
    assert (batch.dimension, batch.unit, batch.describe()) == ("setting", "QUEUE_BATCH_SIZE", "QUEUE_BATCH_SIZE=50")
    assert agree(batch, one("Set QUEUE_BATCH_SIZE = 50 to match."))
    assert not agree(batch, one("By default, QUEUE_BATCH_SIZE=20 ."))
    assert not comparable(batch, one("By default, QUEUE_RETRY_LIMIT=50 ."))


@pytest.mark.parametrize(
    "sentence",
    [
        "The list is at https://example.org/a?page=2 for admins.",  # a link's query
        "Set TIMEOUT=30s in the file.",  # a value with a unit glued on is not a plain number
        "Solve x=5 first.",  # too short to be a setting's name
    ],
)
def test_link_queries_glued_values_and_short_names_are_no_settings(sentence):
    assert all(q.dimension != "setting" for q in extract_quantities(sentence))


def test_a_count_before_a_superlative_counts_the_noun_after_it():
    assert one("Reports cover the three most recent invoices.").unit == "invoice"
    assert one("The 4 least used widgets are hidden.").describe() == "4 widgets"
    assert extract_quantities("The two most popular are pinned.") == []  # no noun counted
