"""The reference server of sections 1 and 2: a plain Flask app that parses the JSON body and returns it.

It is served exactly the way Connexion serves our Flask app, so the ratio measures what our own code
(spec validation, domain checks, the database) costs on top of HTTP + Flask:

    uvicorn --app-dir bench echo_app:asgi --workers <cores>     (Flask inside a2wsgi's thread pool)

`app` is the bare WSGI app (e.g. for `uvicorn --interface wsgi echo_app:app`).
"""

from __future__ import annotations

from a2wsgi import WSGIMiddleware
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/readings/store")
def store():
    return jsonify(request.get_json())


@app.get("/health")
def health():
    return {"status": "ok"}


# The same adapter and default pool (10 threads) as connexion.FlaskApp uses for our app.
asgi = WSGIMiddleware(app.wsgi_app)
