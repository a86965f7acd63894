"""Domain exceptions. The web layer maps each to one HTTP status in a single place (src/errors.py)."""


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    status = 400
    title = "Bad Request"

    def __init__(self, detail: str, *, field: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.headers = headers


class InvalidInput(DomainError):
    """The caller sent something well-formed that breaks a domain rule (names the field when it can)."""


class NotFound(DomainError):
    status = 404
    title = "Not Found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class TooManyRequests(DomainError):
    status = 429
    title = "Too Many Requests"
