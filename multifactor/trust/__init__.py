"""Trusted browsers (:mod:`.browsers`) and the user's signed-in sessions (:mod:`.sessions`).

Both are server records first: the trust cookie is a random token whose hash only the server keeps, and a
session is signed out by marking its row and raising the user's revision (:mod:`multifactor.revocation`),
so nothing a client holds can keep either alive once the server ends it.
"""
