"""0.9.x's ``multifactor.models.UserKey`` and ``KeyTypes``: the queries sites wrote against 0.9.x, over the
library's ``Key`` rows (a proxy: the same table), and ``user.multifactor_keys``."""

import datetime

import pyotp
import pytest
from django.db.models import Count
from django.utils import timezone

from multifactor import crypto
from multifactor.models import DOMAIN_KEYS, Key, KeyTypes, UserKey
from tests.conftest import make_totp, verify_totp

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(user, django_user_model):
    phone, _ = make_totp(user, name="phone")
    spare, _ = make_totp(user, name="")
    spare.enabled = False
    spare.save()
    fido = Key.objects.create(user=user, type="FIDO2", name="yubikey", credential_id=b"\x01" * 16, rp_id="localhost")
    Key.objects.create(user=user, type="TOTP", confirmed=False)  # an enrolment under way
    stranger = django_user_model.objects.create_user("mallory", "m@example.com", "pw")
    make_totp(stranger)
    return phone, spare, fido


def test_the_queries_sites_wrote(user, keys):
    phone, spare, fido = keys
    assert UserKey.objects.filter(user=user, enabled=True).exists()
    assert set(UserKey.objects.filter(user=user, enabled=True)) == {phone, fido}
    assert UserKey.objects.filter(user=user).count() == 3  # not the pending enrolment
    assert UserKey.objects.filter(user=user, key_type=KeyTypes.TOTP).count() == 2
    assert UserKey.objects.filter(user=user, key_type__in=[KeyTypes.FIDO2]).get() == fido
    per_type = UserKey.objects.filter(user=user).values("key_type").annotate(n=Count("pk")).order_by("key_type")
    assert [(row["key_type"], row["n"]) for row in per_type] == [("FIDO2", 1), ("TOTP", 2)]
    assert list(UserKey.objects.filter(user=user).order_by("-added_on").values_list("pk", flat=True)) == [
        fido.pk,
        spare.pk,
        phone.pk,
    ]
    # The related name is unchanged; it lists enrolments under way too (README: "Upgrading from 0.9.x").
    assert user.multifactor_keys.filter(enabled=True, confirmed=True).count() == 2


def test_the_09_attributes(user, keys, signed_in):
    phone, _spare, fido = keys
    totp_key = UserKey.objects.get(pk=phone.pk)
    assert (totp_key.key_type, totp_key.get_key_type_display()) == ("TOTP", "Authenticator app")
    assert (
        totp_key.auth_url == "multifactor:totp_auth"
        and UserKey.objects.get(pk=fido.pk).auth_url == "multifactor:fido2_auth"
    )
    assert totp_key.added_on == phone.created_at and totp_key.last_used is None and totp_key.expires is None
    assert totp_key.display_name() == "phone (Authenticator app)"
    assert UserKey.objects.filter(user=user, last_used__isnull=True).count() == 3
    verify_totp(signed_in, totp_of(phone))
    assert UserKey.objects.get(pk=phone.pk).last_used is not None


def totp_of(key):
    return pyotp.TOTP(crypto.decrypt(Key.objects.get(pk=key.pk).secret))


def test_key_types(keys):
    assert (KeyTypes.FIDO2, KeyTypes.TOTP) == ("FIDO2", "TOTP") and DOMAIN_KEYS == KeyTypes.FIDO2
    assert {"FIDO2", "TOTP"} <= set(KeyTypes.values)


def test_writing_through_the_09_names(user, keys):
    phone, _spare, _fido = keys
    key = UserKey.objects.get(pk=phone.pk)
    key.last_used = timezone.now() - datetime.timedelta(days=1)
    key.save()
    assert Key.objects.get(pk=phone.pk).last_used_at == key.last_used
    created = UserKey.objects.create(user=user, key_type=KeyTypes.RECOVERY, name="codes")
    assert Key.objects.get(pk=created.pk).type == "RECOVERY"


def test_disabling_through_userkey_is_a_revocation(signed_in, user, totp_key):
    key, totp = totp_key
    make_totp(user, name="spare")
    verify_totp(signed_in, totp)
    assert signed_in.get("/f1/").status_code == 200
    assert UserKey.objects.filter(user=user, key_type="TOTP", pk=key.pk).update(enabled=False) == 1
    assert signed_in.get("/f1/").status_code == 302  # its verification ended
    UserKey.objects.filter(pk=key.pk).delete()
    assert not Key.objects.filter(pk=key.pk).exists()


def test_a_totp_key_created_the_09_way_verifies(signed_in, user):
    """Sites' test fixtures made keys with ``properties={"secret_key": ...}``: the seed is encrypted, and works."""
    seed = pyotp.random_base32()
    key = UserKey.objects.create(user=user, key_type=KeyTypes.TOTP, properties={"secret_key": seed})
    stored = Key.objects.get(pk=key.pk)
    assert seed not in stored.secret and crypto.decrypt(stored.secret) == seed
    assert UserKey.objects.get(pk=key.pk).properties == {"last_step": None}  # never the seed
    assert verify_totp(signed_in, pyotp.TOTP(seed))["Location"] == "/done/"
    assert UserKey(properties={"secret_key": seed}, user=user).key_type == "TOTP"  # in either order


def test_09_properties_that_cannot_be_kept_are_refused(user):
    with pytest.raises(ValueError, match="TOTP"):
        UserKey(user=user, key_type=KeyTypes.FIDO2, properties={"type": "YubiKey"})
    fido = UserKey(user=user, key_type=KeyTypes.FIDO2, rp_id="example.com", aaguid="")
    assert fido.properties == {"domain": "example.com"} and fido.device == "----"
