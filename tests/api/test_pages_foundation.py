"""The web pages' foundation over HTTP: the session cookie, CSRF, login/logout, the secret key, the chart library."""

from __future__ import annotations

import re
from dataclasses import replace
from importlib import metadata

import pytest

from app import create_app
from repository import db
from repository import settings as settings_repo
from tests.support.accounts import PASSWORD, register, register_admin


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


def login_page_token(client) -> str:
    return csrf_of(client.get("/login").text)


def log_in(client, username: str, password: str = PASSWORD, **extra):
    token = login_page_token(client)
    form = {"username": username, "password": password, "csrf_token": token, **extra}
    return client.post("/login", data=form, follow_redirects=False)


def session_cookie(response) -> str:
    cookies = [value for key, value in response.headers.multi_items() if key == "set-cookie"]
    return next(cookie for cookie in cookies if cookie.startswith("joi_session="))


def test_the_session_cookie_is_httponly_and_samesite_and_not_secure_over_plain_http(client):
    cookie = session_cookie(client.get("/login"))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_the_cookie_is_secure_when_a_trusted_proxy_says_https(config):
    app = create_app(replace(config, trusted_proxy=True))
    with app.test_client() as client:
        assert "Secure" in session_cookie(client.get("/login", headers={"X-Forwarded-Proto": "https"}))
        assert "Secure" not in session_cookie(client.get("/login", headers={"X-Forwarded-Proto": "http"}))
    db.close_all()


def test_x_forwarded_proto_is_ignored_without_the_trusted_proxy_setting(client):
    assert "Secure" not in session_cookie(client.get("/login", headers={"X-Forwarded-Proto": "https"}))


def test_a_form_post_without_this_sessions_csrf_token_is_refused_and_logs_no_one_in(client):
    register(client, "csrfuser")
    client.get("/login")
    refused = client.post("/login", data={"username": "csrfuser", "password": PASSWORD, "csrf_token": "forged"})
    assert refused.status_code == 400
    assert "did not come from this site" in refused.text
    assert "csrfuser" not in client.get("/").text


def test_a_csrf_token_from_another_session_is_refused(app):
    with app.test_client() as first, app.test_client() as second:
        token = login_page_token(first)
        second.get("/login")
        assert second.post("/login", data={"username": "a", "password": "b", "csrf_token": token}).status_code == 400


def test_login_redirects_to_the_next_page_and_the_layout_names_the_user(client):
    register(client, "pageuser")
    response = log_in(client, "pageuser", next="/login")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert '<span class="who">pageuser</span>' in client.get("/").text


def test_login_never_redirects_to_another_site(client):
    register(client, "nextuser")
    for target in ["https://evil.example/", "//evil.example/", "/\\evil.example", "evil"]:
        response = log_in(client, "nextuser", next=target)
        assert response.headers["location"] == "/", target


def test_a_wrong_password_answers_400_with_the_apis_words_and_no_session(client):
    register(client, "wrongpw")
    response = log_in(client, "wrongpw", password="nope-nope-nope")
    assert response.status_code == 400
    assert "Unable to log in with provided credentials." in response.text
    assert "wrongpw</span>" not in client.get("/").text


def test_a_page_login_keeps_the_users_api_token_working(client):
    account = register(client, "keeptoken")
    log_in(client, "keeptoken")
    assert client.get("/auth/info", headers=account.headers).status_code == 200


def test_logout_ends_the_session_on_the_server_so_a_copied_cookie_stops_working(app):
    with app.test_client() as client:
        register(client, "leaver")
        log_in(client, "leaver")
        cookie = client.cookies.get("joi_session")
        assert "leaver</span>" in client.get("/").text
        token = csrf_of(client.get("/").text)
        assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    with app.test_client() as thief:
        thief.cookies.set("joi_session", cookie)
        assert "leaver</span>" not in thief.get("/").text


def test_an_api_login_elsewhere_ends_the_page_session_as_it_ends_every_token(client):
    register(client, "apirelogin")
    log_in(client, "apirelogin")
    assert client.post("/auth/login", json={"username": "apirelogin", "password": PASSWORD}).status_code == 200
    assert "apirelogin</span>" not in client.get("/").text


def test_an_admin_is_marked_as_admin_in_the_layout(client):
    register_admin(client, "pageadmin")
    log_in(client, "pageadmin")
    assert "pageadmin (admin)" in client.get("/").text


def test_the_generated_secret_key_is_kept_in_the_database_and_every_app_on_it_uses_it(config):
    first = create_app(config)
    second = create_app(config)
    for app in (first, second):
        with app.test_client() as client:
            client.get("/login")  # the first request reads (or makes) the key
    assert first.app.secret_key == second.app.secret_key
    assert len(first.app.secret_key) == 64
    db.connect()
    try:
        assert settings_repo.get("page_session_secret_key") == first.app.secret_key
    finally:
        db.close_all()


def test_a_configured_secret_key_is_used_as_it_is(config):
    app = create_app(replace(config, secret_key="k" * 40))
    assert app.app.secret_key == "k" * 40
    db.close_all()


def test_a_short_secret_key_is_refused_at_start(config):
    with pytest.raises(ValueError, match="SECRET_KEY"):
        replace(config, secret_key="short")


def test_pages_send_a_content_security_policy_and_are_not_cached(client):
    response = client.get("/")
    assert "script-src 'self';" in response.headers["content-security-policy"]
    assert "style-src 'self';" in response.headers["content-security-policy"]
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_chart_library_is_served_from_the_installed_chartkick_package_with_a_long_cache(client):
    version = metadata.version("chartkick")
    response = client.get(f"/assets/chartkick-{version}/Chart.bundle.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.content.lstrip().startswith(b"/*!\n * Chart.js v4.")
    assert client.get("/assets/chartkick-0.0.1/Chart.bundle.js").status_code == 404


def test_the_chart_library_goes_out_gzipped_to_a_browser_that_accepts_it_and_revalidates_by_etag(client):
    url = f"/assets/chartkick-{metadata.version('chartkick')}/Chart.bundle.js"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    packed = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert packed.headers["content-encoding"] == "gzip" and packed.headers["vary"] == "Accept-Encoding"
    assert packed.content == plain.content  # the client undid the gzip
    assert int(packed.headers["content-length"]) < len(plain.content) / 3
    again = client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["etag"]})
    assert again.status_code == 304


def test_our_chart_script_and_stylesheet_are_served(client):
    assert "new Chart(" in client.get("/static/js/charts.js").text
    assert ":focus-visible" in client.get("/static/css/site.css").text
