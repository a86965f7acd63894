"""The reference servers of the benchmark: a plain Flask app doing the least each endpoint must.

- `POST /readings/store` parses the JSON body and returns it (sections 1 and 2);
- `POST /api/v1/datalogger/dsmrreading` parses the form post (its `telegram` field) and answers 201 (4, 8);
- `GET /fixed` answers a fixed JSON body, the file ECHO_FIXED_BODY names (section 7: a body the size of
  ours, so the ratio measures what computing it costs).

Served two ways, with the same worker count as our app:

    gunicorn --chdir bench -k sync -w <cores> echo_app:app      (how a plain Flask app is deployed)
    uvicorn --app-dir bench echo_app:asgi --workers <cores>     (Flask inside a2wsgi, as Connexion serves ours)
"""

from __future__ import annotations

import os

from a2wsgi import WSGIMiddleware
from flask import Flask, Response, jsonify, request

app = Flask(__name__)
_FIXED = open(os.environ["ECHO_FIXED_BODY"], "rb").read() if os.environ.get("ECHO_FIXED_BODY") else b"{}"  # noqa: SIM115


@app.post("/readings/store")
def store():
    return jsonify(request.get_json())


@app.post("/api/v1/datalogger/dsmrreading")
def telegram():
    if not request.form.get("telegram"):
        return Response("telegram is required", status=400, mimetype="text/plain")
    return Response("", status=201, mimetype="text/plain")


@app.get("/fixed")
def fixed():
    return Response(_FIXED, mimetype="application/json")


@app.get("/health")
def health():
    return {"status": "ok"}


# The same adapter and default pool (10 threads) as connexion.FlaskApp uses for our app.
asgi = WSGIMiddleware(app.wsgi_app)
