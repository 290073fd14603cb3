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
    ):
        super().__init__(str(message))
        self.code, self.message, self.status, self.param, self.retry_after = (
            code,
            message,
            status,
            param,
            retry_after,
        )

    def as_json(self) -> dict:
        error = {"code": self.code, "message": str(self.message)}
        if self.param:
            error["param"] = self.param
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
