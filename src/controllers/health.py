from connexion.problem import problem

from controllers.responses import json_response
from repository import db


def check():
    if db.ping():
        return json_response({"status": "ok", "database": "ok"})
    return problem(
        status=503, title="Service Unavailable", detail="The database does not answer.", headers={"Retry-After": "5"}
    )
