"""The channel rules called directly against the shipped PG catalog: no database, no app."""

from __future__ import annotations

import pytest

from gql_api.channels import rules
from gql_api.channels.rules import CredentialValue, IntegrationMode
from gql_api.errors import DomainError, Problems, UserErrorCode
from gql_api.pg_catalog.catalog import (
    Catalog,
    ChannelPurpose,
    PaymentModule,
    PgProvider,
    load_catalog,
)

MID = ("input", "pgMerchantId")
KCP = PgProvider.KCP_V2


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _module(catalog: Catalog, provider: PgProvider, code: str) -> PaymentModule:
    info = catalog.provider(provider)
    assert info is not None
    module = info.module(code)
    assert module is not None
    return module


@pytest.fixture(scope="module")
def kcp(catalog: Catalog) -> PaymentModule:
    """Four credentials (three required), shared test MIDs T0000, A52Q7, AO0Q9."""
    return _module(catalog, KCP, "KCP_V2_PAYMENT")


@pytest.fixture(scope="module")
def nice(catalog: Catalog) -> PaymentModule:
    """A MID pattern (10 letters or digits) and a credential pattern (cancelPassword)."""
    return _module(catalog, PgProvider.NICE_V2, "NICE_V2_PAYMENT")


def _found(problems: Problems) -> list[tuple[UserErrorCode, tuple[str, ...] | None]]:
    return [(error.code, error.field) for error in problems.errors]


# resolve_module


def test_resolve_module_finds_a_catalog_module(catalog: Catalog) -> None:
    problems = Problems()
    resolved = rules.resolve_module(problems, catalog, KCP, "KCP_V2_PAYMENT")
    assert resolved is not None
    info, module = resolved
    assert (info.provider, module.code) == (KCP, "KCP_V2_PAYMENT")
    assert problems.errors == []


def test_resolve_module_refuses_a_provider_outside_the_catalog(catalog: Catalog) -> None:
    problems = Problems()
    assert rules.resolve_module(problems, catalog, PgProvider.PAYPAL, "PAYPAL_PAYMENT") is None
    assert _found(problems) == [(UserErrorCode.INVALID_INPUT, ("input", "pgProvider"))]


def test_resolve_module_refuses_another_providers_module(catalog: Catalog) -> None:
    problems = Problems()
    assert rules.resolve_module(problems, catalog, KCP, "NICE_V2_PAYMENT") is None
    assert _found(problems) == [(UserErrorCode.PG_MODULE_MISMATCH, ("input", "moduleCode"))]


# check_purpose


def test_check_purpose_accepts_a_purpose_of_the_module(kcp: PaymentModule) -> None:
    problems = Problems()
    rules.check_purpose(problems, kcp, ChannelPurpose.PAYMENT)
    assert problems.errors == []


def test_check_purpose_refuses_a_purpose_the_module_lacks(kcp: PaymentModule) -> None:
    problems = Problems()
    rules.check_purpose(problems, kcp, ChannelPurpose.IDENTITY_VERIFICATION)
    assert _found(problems) == [(UserErrorCode.PURPOSE_NOT_SUPPORTED, ("input", "purpose"))]


# classify_mid


def test_own_shared_test_mid_in_test_mode_is_shared(catalog: Catalog, kcp: PaymentModule) -> None:
    problems = Problems()
    assert rules.classify_mid(problems, catalog, kcp, IntegrationMode.TEST, "T0000")
    assert problems.errors == []


def test_own_mid_is_not_shared_in_either_mode(catalog: Catalog, kcp: PaymentModule) -> None:
    for mode in IntegrationMode:
        problems = Problems()
        assert not rules.classify_mid(problems, catalog, kcp, mode, "MYOWNMID")
        assert problems.errors == []


def test_shared_test_mid_is_refused_in_live_mode(catalog: Catalog, kcp: PaymentModule) -> None:
    problems = Problems()
    assert not rules.classify_mid(problems, catalog, kcp, IntegrationMode.LIVE, "T0000")
    assert _found(problems) == [(UserErrorCode.SHARED_TEST_MID_NOT_ALLOWED, MID)]


def test_another_modules_shared_test_mid_is_refused(catalog: Catalog, kcp: PaymentModule) -> None:
    # iamport00m is NICE_V2's shared test MID, not KCP's
    for mode in IntegrationMode:
        problems = Problems()
        assert not rules.classify_mid(problems, catalog, kcp, mode, "iamport00m")
        assert _found(problems) == [(UserErrorCode.SHARED_TEST_MID_NOT_ALLOWED, MID)]
        assert rules.mid_refused(problems)


def test_mid_refused_only_for_a_refused_shared_test_mid() -> None:
    problems = Problems()
    assert not rules.mid_refused(problems)
    problems.add(UserErrorCode.INVALID_INPUT, MID, "bad")
    assert not rules.mid_refused(problems)
    problems.add(UserErrorCode.SHARED_TEST_MID_NOT_ALLOWED, MID, "shared")
    assert rules.mid_refused(problems)


# check_pg_merchant_id


def test_merchant_id_is_trimmed(kcp: PaymentModule) -> None:
    problems = Problems()
    assert rules.check_pg_merchant_id(problems, kcp, "  A1B2C  ", shared=False) == "A1B2C"
    assert problems.errors == []


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", UserErrorCode.REQUIRED),
        ("   ", UserErrorCode.REQUIRED),
        ("A1 B2", UserErrorCode.INVALID_INPUT),
        ("A1\x00B2", UserErrorCode.INVALID_INPUT),
        ("A1\u200bB2", UserErrorCode.INVALID_INPUT),  # a format character (Cf)
        ("M" * (rules.MID_MAX_LENGTH + 1), UserErrorCode.INVALID_INPUT),
    ],
)
def test_merchant_id_refused(kcp: PaymentModule, value: str, code: UserErrorCode) -> None:
    problems = Problems()
    rules.check_pg_merchant_id(problems, kcp, value, shared=False)
    assert _found(problems) == [(code, MID)]


def test_merchant_id_at_the_length_limit_is_accepted(kcp: PaymentModule) -> None:
    problems = Problems()
    rules.check_pg_merchant_id(problems, kcp, "M" * rules.MID_MAX_LENGTH, shared=False)
    assert problems.errors == []


def test_merchant_id_must_match_the_modules_pattern(nice: PaymentModule) -> None:
    good, bad = Problems(), Problems()
    rules.check_pg_merchant_id(good, nice, "abcDE12345", shared=False)
    rules.check_pg_merchant_id(bad, nice, "abc12345", shared=False)
    assert good.errors == []
    assert _found(bad) == [(UserErrorCode.INVALID_INPUT, MID)]


def test_shared_test_mid_skips_the_modules_pattern(nice: PaymentModule) -> None:
    # a shared test MID is the catalog's own value, whatever the pattern for own MIDs says
    problems = Problems()
    rules.check_pg_merchant_id(problems, nice, "not-ten-chars", shared=True)
    assert problems.errors == []


# check_credential_input


def test_known_credentials_are_returned_trimmed(kcp: PaymentModule) -> None:
    problems = Problems()
    values = [
        CredentialValue("certificate", "  -----BEGIN CERTIFICATE-----\nAAA\n  "),
        CredentialValue("groupId", ""),
    ]
    given, refused = rules.check_credential_input(problems, kcp, values)
    assert given == {"certificate": "-----BEGIN CERTIFICATE-----\nAAA", "groupId": ""}
    assert refused == set()
    assert problems.errors == []


def test_multi_line_values_keep_their_newlines_and_tabs(kcp: PaymentModule) -> None:
    problems = Problems()
    value = "line one\r\n\tline two"
    given, _ = rules.check_credential_input(problems, kcp, [CredentialValue("privateKey", value)])
    assert given == {"privateKey": value}
    assert problems.errors == []


def test_every_bad_credential_is_reported_at_its_path(
    kcp: PaymentModule, nice: PaymentModule
) -> None:
    problems = Problems()
    values = [
        CredentialValue("nope", "x"),
        CredentialValue("certificate", "ok"),
        CredentialValue("certificate", "again"),
        CredentialValue("privateKey", "bell\x07"),
        CredentialValue("privateKeyPassword", "p" * (rules.CREDENTIAL_MAX_LENGTH + 1)),
    ]
    given, refused = rules.check_credential_input(problems, kcp, values)
    assert _found(problems) == [
        (UserErrorCode.CREDENTIAL_UNKNOWN, ("input", "credentials", "nope")),
        (UserErrorCode.INVALID_INPUT, ("input", "credentials", "certificate")),
        (UserErrorCode.INVALID_INPUT, ("input", "credentials", "privateKey")),
        (UserErrorCode.INVALID_INPUT, ("input", "credentials", "privateKeyPassword")),
    ]
    assert given == {"certificate": "ok"}
    assert refused == {"privateKey", "privateKeyPassword"}


def test_a_refused_key_given_again_is_reported_as_given_twice(kcp: PaymentModule) -> None:
    problems = Problems()
    values = [CredentialValue("privateKey", "\x00"), CredentialValue("privateKey", "fine")]
    given, refused = rules.check_credential_input(problems, kcp, values)
    assert [e.code for e in problems.errors] == [UserErrorCode.INVALID_INPUT] * 2
    assert "twice" in problems.errors[1].message.render("en")
    assert given == {}
    assert refused == {"privateKey"}


def test_a_credential_must_match_its_pattern(nice: PaymentModule) -> None:
    good, bad = Problems(), Problems()
    rules.check_credential_input(good, nice, [CredentialValue("cancelPassword", "1234")])
    _, refused = rules.check_credential_input(
        bad, nice, [CredentialValue("cancelPassword", "12345678901")]
    )
    assert good.errors == []
    assert _found(bad) == [
        (UserErrorCode.INVALID_INPUT, ("input", "credentials", "cancelPassword"))
    ]
    assert refused == {"cancelPassword"}


def test_an_empty_value_means_clear_and_skips_the_pattern(nice: PaymentModule) -> None:
    problems = Problems()
    given, _ = rules.check_credential_input(problems, nice, [CredentialValue("cancelPassword", "")])
    assert given == {"cancelPassword": ""}
    assert problems.errors == []


# check_credential_count


def test_credential_count_up_to_the_limit_passes() -> None:
    rules.check_credential_count(
        [CredentialValue(f"k{i}", "v") for i in range(rules.MAX_CREDENTIALS)]
    )


def test_credential_count_over_the_limit_raises_one_error() -> None:
    values = [CredentialValue(f"k{i}", "v") for i in range(rules.MAX_CREDENTIALS + 1)]
    with pytest.raises(DomainError) as raised:
        rules.check_credential_count(values)
    assert [(e.code, e.field) for e in raised.value.errors] == [
        (UserErrorCode.INVALID_INPUT, ("input", "credentials"))
    ]


# check_required


def test_own_mid_with_every_required_credential_passes(kcp: PaymentModule) -> None:
    problems = Problems()
    present = {"certificate": "c", "privateKey": "k", "privateKeyPassword": "p"}
    rules.check_required(problems, kcp, present, shared=False)
    assert problems.errors == []


def test_own_mid_reports_each_missing_required_credential(kcp: PaymentModule) -> None:
    problems = Problems()
    rules.check_required(problems, kcp, {"certificate": "c", "groupId": "g"}, shared=False)
    assert _found(problems) == [
        (UserErrorCode.CREDENTIAL_MISSING, ("input", "credentials", "privateKey")),
        (UserErrorCode.CREDENTIAL_MISSING, ("input", "credentials", "privateKeyPassword")),
    ]


def test_shared_test_mid_takes_no_credentials(kcp: PaymentModule) -> None:
    none_given = Problems()
    rules.check_required(none_given, kcp, {}, shared=True)
    assert none_given.errors == []
    some_given = Problems()
    rules.check_required(some_given, kcp, {"certificate": "c", "groupId": "g"}, shared=True)
    assert _found(some_given) == [
        (UserErrorCode.INVALID_INPUT, ("input", "credentials", "certificate")),
        (UserErrorCode.INVALID_INPUT, ("input", "credentials", "groupId")),
    ]


# channel_type


def test_channel_type_follows_mode_and_shared_mid() -> None:
    assert rules.channel_type(IntegrationMode.LIVE, False) is rules.ChannelType.LIVE
    assert rules.channel_type(IntegrationMode.TEST, False) is rules.ChannelType.MERCHANT_TEST
    assert rules.channel_type(IntegrationMode.TEST, True) is rules.ChannelType.SHARED_TEST
