"""The demo's own pages: a home page, a page that needs one factor, and one that needs a fresh one."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from multifactor.decorators import multifactor_protected


def home(request):
    return render(request, "demo/home.html")


@login_required
@multifactor_protected(factors=1)
def protected(request):
    return render(
        request,
        "demo/page.html",
        {"title": "Protected page", "text": "You reached it with one verified factor."},
    )


@login_required
@multifactor_protected(factors=1, max_age=60)
def step_up(request):
    return render(
        request,
        "demo/page.html",
        {
            "title": "Step-up page",
            "text": "This page asks for a factor verified within the last 60 seconds. Reload it in a minute.",
        },
    )
