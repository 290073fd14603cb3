"""0.9.x's ``mf_settings``: read access to every ``MULTIFACTOR`` key, now a live view of ``multifactor.conf``.

0.9.x filled ``settings.MULTIFACTOR`` in with its defaults at import time and handed the dict out. Here
``mf_settings["RECHECK_MIN"]`` reads the validated setting at the moment of the call (``override_settings``
works; a bad value reads as its default, as everywhere else, and ``manage.py check`` reports it). Keys 0.9.x
knew that this version ignores read as the site set them, else as 0.9.x's default; any other key the site
put in ``MULTIFACTOR`` reads as it is. It is read-only: change ``settings.MULTIFACTOR`` instead.
"""

from collections.abc import Mapping

from django.conf import settings

from .. import conf

# What 0.9.5 answered for the keys it knew and this version ignores (see conf.DEPRECATED_KEYS).
IGNORED_09_DEFAULTS = {
    "FIDO_SERVER_ICON": None,
    "MAX_ATTEMPTS": 5,
    "ATTEMPT_PERIOD": 60 * 5,
    "LOCKOUT_PERIOD": 60 * 30,
    "ATTEMPT_RETENTION_DAYS": 90,
}


def _raw() -> dict:
    raw = getattr(settings, "MULTIFACTOR", None)
    return raw if isinstance(raw, dict) else {}


class MultifactorSettingsView(Mapping):
    def __getitem__(self, name):
        if name in conf.SPEC:
            return getattr(conf.get(), name)
        raw = _raw()
        if name in raw:
            return raw[name]
        if name in IGNORED_09_DEFAULTS:
            return IGNORED_09_DEFAULTS[name]
        raise KeyError(name)

    def _names(self):
        return list(dict.fromkeys([*conf.SPEC, *IGNORED_09_DEFAULTS, *_raw()]))

    def __iter__(self):
        return iter(self._names())

    def __len__(self):
        return len(self._names())

    def __repr__(self):  # not the values: ENCRYPTION_KEYS must not end up in a log or an error page
        return f"<mf_settings: {len(self)} keys of settings.MULTIFACTOR>"


mf_settings = MultifactorSettingsView()
