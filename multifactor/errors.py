"""The one error type every flow raises; HTML views turn it into a message, the API into JSON."""

from django.utils.translation import gettext_lazy as _


class FlowError(Exception):
    def __init__(
        self,
        code: str,
        message,
        status: int = 400,
        param: str | None = None,
        retry_after: int = 0,
        attempts_left: int | None = None,
    ):
        super().__init__(str(message))
        self.code, self.message, self.status, self.param, self.retry_after = (
            code,
            message,
            status,
            param,
            retry_after,
        )
        self.attempts_left = attempts_left  # wrong answers left before the key locks, when a key was tried

    def as_json(self) -> dict:
        error: dict = {"code": self.code, "message": str(self.message)}
        if self.param:
            error["param"] = self.param
        if self.attempts_left is not None:
            error["attempts_left"] = self.attempts_left
        return error


def not_found():
    return FlowError("not_found", _("That key does not exist."), 404)


def reauthentication_required():
    return FlowError(
        "reauthentication_required",
        _("Verify with one of your existing factors first, then try again."),
        403,
    )


def factor_not_allowed():
    return FlowError(
        "factor_not_allowed",
        _("This kind of factor is not available on this site."),
        403,
    )
