"""GET /: people who open the service's address land on the API documentation (Swagger UI)."""

from flask import redirect

DOCS_PATH = "/ui/"


def start_page():
    return redirect(DOCS_PATH, code=302)
