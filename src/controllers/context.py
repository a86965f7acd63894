"""What a controller may need from the running app besides its arguments."""

from __future__ import annotations

import time

from flask import current_app

from config import Config


def settings() -> Config:
    return current_app.config["SETTINGS"]


def now() -> int:
    return int(time.time())
