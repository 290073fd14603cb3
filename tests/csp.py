"""A strict Content-Security-Policy for the browser tests (tests/browser/conftest.py installs it).

The MFA pages must work with no inline script, no inline style, no eval and nothing from another origin
(SECURITY.md R14): the browser tests load every page under this header and fail on any violation.
"""

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class StrictCSPMiddleware:
    """Adds :data:`POLICY` to every response that has no Content-Security-Policy of its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
