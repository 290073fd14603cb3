"""Views protected in every way the contract allows, for the decorator tests."""

import functools

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views import View

from multifactor.backends import RevisionMixin
from multifactor.decorators import multifactor_protected
from multifactor.mixins import MultifactorRequiredMixin


def ok(request, *args, **kwargs):
    return HttpResponse("ok")


async def async_ok(request):
    return HttpResponse("async ok")


def two_factors(request):
    return 2


class Callable:
    def __init__(self, n):
        self.n = n

    def __call__(self, request):
        return self.n


class Policy:
    def required(self, request):
        return int(request.GET.get("n", 1))


def only_named(user):
    return user.username.startswith("staff")


class Protected(LoginRequiredMixin, MultifactorRequiredMixin, View):
    factors = 1

    def get(self, request):
        return HttpResponse("cbv ok")


def plain(request):
    return HttpResponse("plain")


def in_flight(request):
    """A slow request that loaded the session, for tests/test_multiprocess.py: it says it started (a file in the
    ``gate`` directory), waits up to 20 s for a ``go`` file, then (``write=1``) stores something in the session,
    so that its response saves the copy it loaded before whatever happened in between."""
    import pathlib
    import time

    gate = pathlib.Path(request.GET["gate"])
    request.session.get("anything")  # load the session now, as a view's first access would
    (gate / "started").touch()
    deadline = time.monotonic() + 20
    while not (gate / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    if request.GET.get("write") == "1":
        request.session["in_flight_note"] = time.time()
    return HttpResponse("landed")


def api_view(request):
    return JsonResponse({"ok": True})


P = multifactor_protected
urlpatterns = [
    path("done/", ok),
    path("plain/", login_required(plain), name="plain"),
    path("in-flight/", login_required(P(factors=1)(in_flight)), name="in-flight"),
    path("open/", P()(ok), name="open"),
    path("f0/", login_required(P(factors=0)(ok)), name="f0"),
    path("f1/", login_required(P(factors=1)(ok)), name="f1"),
    path("f2/", login_required(P(factors=2)(ok)), name="f2"),
    path("fn/", login_required(P(factors=two_factors)(ok)), name="fn"),
    path(
        "partial/",
        login_required(P(factors=functools.partial(lambda n, request: n, 2))(ok)),
        name="partial",
    ),
    path("method/", login_required(P(factors=Policy().required)(ok)), name="method"),
    path("callable/", login_required(P(factors=Callable(1))(ok)), name="callable"),
    path("lambda/", login_required(P(factors=lambda request: 1)(ok)), name="lambda"),
    path(
        "filter-dict/",
        login_required(P(factors=1, user_filter={"is_staff": True})(ok)),
        name="filter-dict",
    ),
    path(
        "filter-fn/",
        login_required(P(factors=1, user_filter=only_named)(ok)),
        name="filter-fn",
    ),
    path("max-age/", login_required(P(factors=1, max_age=60)(ok)), name="max-age"),
    path("advertise/", login_required(P(advertise=True)(ok)), name="advertise"),
    path("async/", P(factors=1)(async_ok), name="async"),
    path("async-login/", login_required(async_ok), name="async-login"),
    path("async-login-f1/", login_required(P(factors=1)(async_ok)), name="async-login-f1"),
    path("cbv/", Protected.as_view(), name="cbv"),
    path("api/thing", login_required(P(factors=1)(api_view)), name="api-thing"),
]


# -- Views for tests/test_decorator.py, test_session.py and test_checks.py ----------------------------------


def bypass(request):
    """MULTIFACTOR["BYPASS"] in the tests: a request carrying this header skips MFA."""
    return request.headers.get("X-Bypass-MFA") == "yes"


def login_callback(request, username):
    """MULTIFACTOR["LOGIN_CALLBACK"] in the tests."""
    return HttpResponse(f"callback for {username}")


def show_messages(request):
    """The pending django.contrib.messages as JSON (reading them consumes them, as a page would)."""
    from django.contrib.messages import get_messages

    return JsonResponse({"messages": [{"level": m.level_tag, "message": str(m)} for m in get_messages(request)]})


class AsyncPage(View):
    async def get(self, request):
        return HttpResponse("async cbv ok")


class AsyncProtected(MultifactorRequiredMixin, View):
    factors = 1

    async def get(self, request):
        return HttpResponse("async mixin ok")


urlpatterns += [
    path("messages/", show_messages, name="messages"),
    path("callable2/", login_required(P(factors=Callable(2))(ok)), name="callable2"),
    path("lambda2/", login_required(P(factors=lambda request: 2)(ok)), name="lambda2"),
    path("async-cbv/", P(factors=1)(AsyncPage.as_view()), name="async-cbv"),
    path("async-mixin/", AsyncProtected.as_view(), name="async-mixin"),
]


class SiteBackend(RevisionMixin, ModelBackend):
    """A site's own backend with the revision mixin in front (see test_checks)."""
