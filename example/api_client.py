#!/usr/bin/env python3
"""Sign in to a site that uses django-multifactor and verify through its JSON API: the standard library only.

The API has no login endpoint of its own: a client signs in the way a browser does, through the site's
Django login form, and then holds the session cookie.

1. GET the login page: the response sets the ``csrftoken`` cookie.
2. POST ``username``, ``password`` and ``csrfmiddlewaretoken`` (the cookie's value) to it, with a
   ``Referer`` of the site (Django checks it on HTTPS). A 302 means signed in; the answer sets the
   ``sessionid`` cookie and a new ``csrftoken`` (Django rotates it at login).
3. Call ``api/v1/...`` with both cookies, the current ``csrftoken`` in an ``X-CSRFToken`` header and JSON
   bodies: ``status``, then a verification endpoint such as ``totp/authenticate``.

Against the demo site (``make demo``, then, in another terminal)::

    python example/api_client.py --enrol                       # the demo user has no key yet: add one
    python example/api_client.py --totp-secret <the secret>    # later: verify with a code computed from it
    python example/api_client.py --code 123456                 # or type the code your app shows

Options: ``--url`` (http://localhost:8000), ``--username`` / ``--password`` (the demo's), ``--login-path``
(/accounts/login/) and ``--mfa-path`` (/multifactor/, where the site includes ``multifactor.urls``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.cookiejar
import json
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


class SignInFailed(Exception):
    pass


class ApiError(Exception):
    """A ``{"errors": [...]}`` answer: ``status``, ``errors`` (the list), ``retry_after`` (429)."""

    def __init__(self, status: int, errors: list, retry_after: str | None = None):
        self.status, self.errors, self.retry_after = status, errors, retry_after
        first = errors[0] if errors else {}
        super().__init__(f"{status} {first.get('code')}: {first.get('message')}")

    @property
    def code(self) -> str | None:
        return self.errors[0].get("code") if self.errors else None


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    """Hand redirects back to the caller: a 302 after the login form is the answer we look for."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Session:
    """One signed-in session of the site, kept in a cookie jar."""

    def __init__(self, url: str, login_path: str = "/accounts/login/", mfa_path: str = "/multifactor/"):
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"{url!r} is not an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.login_path = login_path
        self.api_path = mfa_path.rstrip("/") + "/api/v1/"
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _KeepRedirects())

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, headers, body) of one request; HTTP errors and redirects are answers, not exceptions."""
        headers = {"Referer": self.url + path, **(headers or {})}
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)  # noqa: S310
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:  # 3xx (not followed), 4xx, 5xx
            with error:
                return error.code, error.headers, error.read()

    def sign_in(self, username: str, password: str) -> None:
        self.request("GET", self.login_path)  # sets the csrftoken cookie
        token = self.cookie("csrftoken")
        if not token:
            raise SignInFailed(f"{self.login_path} set no csrftoken cookie: is it the site's login page?")
        form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
        status, _headers, _body = self.request(
            "POST", self.login_path, form.encode(), {"Content-Type": "application/x-www-form-urlencoded"}
        )
        if status != 302:  # Django's LoginView shows the form again (200) when the credentials are wrong
            raise SignInFailed(f"the login form answered {status}: wrong username or password?")

    def api(self, method: str, endpoint: str, body: dict | None = None):
        """``data`` of a JSON API call (None for 204); raises :class:`ApiError` for an error answer."""
        headers = {"Accept": "application/json", "X-CSRFToken": self.cookie("csrftoken") or ""}
        payload = None
        if body is not None or method in ("POST", "PATCH"):
            payload = json.dumps(body or {}).encode()
            headers["Content-Type"] = "application/json"
        status, response_headers, raw = self.request(method, self.api_path + endpoint, payload, headers)
        if status == 204:
            return None
        answer = json.loads(raw or b"{}")
        if status >= 400:
            raise ApiError(status, answer.get("errors", []), response_headers.get("Retry-After"))
        return answer["data"]

    # The calls this example makes (the README lists them all).
    def status(self) -> dict:
        return self.api("GET", "status")

    def totp_authenticate(self, code: str) -> dict:
        return self.api("POST", "totp/authenticate", {"code": code})

    def totp_enrol(self, name: str = "api_client.py") -> tuple[str, dict]:
        """Add an authenticator app: the secret to put into the app, and the new key."""
        secret = self.api("POST", "totp/begin")["secret"]
        return secret, self.api("POST", "totp/activate", {"code": totp(secret), "name": name})


def totp(secret: str, at: float | None = None, digits: int = 6, period: int = 30) -> str:
    """The RFC 6238 code (HMAC-SHA1, 30 s, 6 digits: what authenticator apps use) of a base32 secret."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // period)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 10**digits:0{digits}d}"


def main(argv=None, out=sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://localhost:8000")
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", default="demo-password-123")
    parser.add_argument("--login-path", default="/accounts/login/")
    parser.add_argument("--mfa-path", default="/multifactor/")
    parser.add_argument("--code", help="a code from your authenticator app")
    parser.add_argument("--totp-secret", help="the app's secret (base32): the code is computed from it")
    parser.add_argument("--enrol", action="store_true", help="add an authenticator app if the user has no key")
    args = parser.parse_args(argv)

    def say(*words):
        print(*words, file=out)

    site = Session(args.url, args.login_path, args.mfa_path)
    try:
        site.sign_in(args.username, args.password)
        say(f"Signed in to {args.url} as {args.username}.")
        status = site.status()
        say("Keys:", "yes" if status["has_keys"] else "none", "- verified:", [v["type"] for v in status["verified"]])
        if not status["has_keys"]:
            if not args.enrol:
                say("No key yet: run again with --enrol to add an authenticator app.")
                return 0
            secret, key = site.totp_enrol()
            say(f"Added {key['name']!r} (key {key['id']}). Put this secret into your authenticator app: {secret}")
        else:
            code = args.code or (totp(args.totp_secret) if args.totp_secret else input("Code from your app: "))
            answer = site.totp_authenticate(code.strip())
            say("Verified; the site would now send a browser to", answer["next"])
        say("Verified factors:", [v["type"] for v in site.status()["verified"]])
        return 0
    except SignInFailed as error:
        say("Could not sign in:", error)
    except ApiError as error:
        say("The API refused:", error)
        if error.retry_after:
            say(f"Try again in {error.retry_after} s.")
    except OSError as error:  # the site is not running, or not at --url
        say(f"Could not reach {args.url}: {error}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
