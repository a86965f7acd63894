"""The shared layout, the start page and login/logout in a real browser."""

from __future__ import annotations

from tests.browser.conftest import log_in


def test_the_start_page_shows_the_service_its_areas_and_its_health_with_no_console_error(page, shoot):
    page.goto("/")
    assert page.get_by_role("heading", name="JOI Energy", level=1).is_visible()
    assert page.locator("#health-status").inner_text() == "The service runs and the database answers."
    assert page.get_by_role("link", name="API documentation (Swagger UI)").get_attribute("href") == "/ui/"
    assert shoot(page, "start-page").stat().st_size > 0


def test_a_user_logs_in_through_the_form_sees_their_name_and_logs_out(page, live_server, shoot):
    user = live_server.user("pagelogin")
    log_in(page, user)
    assert page.locator(".account .who").inner_text() == "pagelogin"
    shoot(page, "logged-in")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/")
    assert page.get_by_role("link", name="Log in").is_visible()


def test_a_wrong_password_shows_the_refusal_on_the_form(page, live_server):
    user = live_server.user("pagewrong")
    # The refused login answers 400, as the API's does (Chromium logs that status on the console too).
    page.problems.allowed += ["HTTP 400: POST", "status of 400"]
    page.goto("/login")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "Unable to log in with provided credentials."
    assert page.get_by_label("Username").input_value() == "pagewrong"


def test_keyboard_focus_is_visible_and_the_first_tab_reaches_the_skip_link(page):
    page.goto("/")
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.className")
    assert focused == "skip-link"
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


def test_the_start_page_fits_a_phone_without_sideways_scrolling(phone_page, shoot):
    phone_page.goto("/")
    overflow = phone_page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    shoot(phone_page, "start-page-phone")
