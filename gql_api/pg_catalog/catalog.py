"""Loading and validating the catalog data file shipped in the package (catalog.json).

Labels, names and help texts are Korean, as PortOne's console writes them; an optional `…En`
key beside one (`label`/`labelEn`, `name`/`nameEn`, …) gives its English. The `localized_…`
properties pair them (gql_api.i18n.Localized), so that the API answers in the request's
language and shows the Korean text where no English is given.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gql_api.i18n import Localized


class ModuleVersion(StrEnum):
    V1 = "V1"
    V2 = "V2"


class ChannelPurpose(StrEnum):
    PAYMENT = "PAYMENT"
    IDENTITY_VERIFICATION = "IDENTITY_VERIFICATION"


class PgProvider(StrEnum):
    """PortOne's PgProvider enum (REST v2 OpenAPI, 56 values)."""

    HTML5_INICIS = "HTML5_INICIS"
    PAYPAL = "PAYPAL"
    PAYPAL_V2 = "PAYPAL_V2"
    INICIS = "INICIS"
    DANAL = "DANAL"
    NICE = "NICE"
    DANAL_TPAY = "DANAL_TPAY"
    JTNET = "JTNET"
    UPLUS = "UPLUS"
    NAVERPAY = "NAVERPAY"
    KAKAO = "KAKAO"
    SETTLE = "SETTLE"
    KCP = "KCP"
    MOBILIANS = "MOBILIANS"
    KAKAOPAY = "KAKAOPAY"
    NAVERCO = "NAVERCO"
    SYRUP = "SYRUP"
    KICC = "KICC"
    EXIMBAY = "EXIMBAY"
    SMILEPAY = "SMILEPAY"
    PAYCO = "PAYCO"
    KCP_BILLING = "KCP_BILLING"
    ALIPAY = "ALIPAY"
    PAYPLE = "PAYPLE"
    CHAI = "CHAI"
    BLUEWALNUT = "BLUEWALNUT"
    SMARTRO = "SMARTRO"
    SMARTRO_V2 = "SMARTRO_V2"
    PAYMENTWALL = "PAYMENTWALL"
    TOSSPAYMENTS = "TOSSPAYMENTS"
    KCP_QUICK = "KCP_QUICK"
    DAOU = "DAOU"
    GALAXIA = "GALAXIA"
    TOSSPAY = "TOSSPAY"
    KCP_DIRECT = "KCP_DIRECT"
    SETTLE_ACC = "SETTLE_ACC"
    SETTLE_FIRM = "SETTLE_FIRM"
    INICIS_UNIFIED = "INICIS_UNIFIED"
    KSNET = "KSNET"
    PINPAY = "PINPAY"
    NICE_V2 = "NICE_V2"
    TOSS_BRANDPAY = "TOSS_BRANDPAY"
    WELCOME = "WELCOME"
    TOSSPAY_V2 = "TOSSPAY_V2"
    INICIS_V2 = "INICIS_V2"
    KPN = "KPN"
    KCP_V2 = "KCP_V2"
    HYPHEN = "HYPHEN"
    EXIMBAY_V2 = "EXIMBAY_V2"
    INICIS_JP = "INICIS_JP"
    PAYLETTER_GLOBAL = "PAYLETTER_GLOBAL"
    MOBILIANS_V2 = "MOBILIANS_V2"
    TRIPLE_A = "TRIPLE_A"
    KICC_V2 = "KICC_V2"
    INNOPAY = "INNOPAY"
    HECTO_GLOBAL = "HECTO_GLOBAL"


_KEY = r"^[a-z][A-Za-z0-9]{0,39}$"  # camelCase credential keys, e.g. signKey
_CODE = r"^[A-Z][A-Z0-9_]{1,63}$"


_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _english(value: str | None) -> str | None:
    """An English label or name has no Hangul: that is a Korean text pasted into the wrong
    key. (English help texts may quote a Korean console's menu names.)"""
    if value is not None and _HANGUL.search(value):
        raise ValueError(f"English text {value!r} contains Hangul")
    return value


def _paired(korean: str | None, english: str | None, what: str) -> Localized | None:
    """Korean and English of one text; English alone (nothing to translate) is refused."""
    if korean is None:
        if english is not None:
            raise ValueError(f"{what}: English text without the Korean one")
        return None
    return Localized(ko=korean, en=english)


def _valid_pattern(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as error:
            message = f"pattern {value!r} is not a valid regular expression: {error}"
            raise ValueError(message) from None
        if not (value.startswith("^") and value.endswith("$")):
            raise ValueError(f"pattern {value!r} must be anchored with ^ and $")
    return value


class CredentialField(_Strict):
    key: str = Field(pattern=_KEY)
    label: str = Field(min_length=1, max_length=100)
    label_en: str | None = Field(default=None, alias="labelEn", min_length=1, max_length=100)
    required: bool
    secret: bool
    pattern: str | None = None
    help: str | None = Field(default=None, max_length=500)
    help_en: str | None = Field(default=None, alias="helpEn", max_length=500)

    _check_pattern = field_validator("pattern")(_valid_pattern)
    _check_english = field_validator("label_en")(_english)

    @model_validator(mode="after")
    def _help_pairs(self) -> CredentialField:
        _paired(self.help, self.help_en, f"credential {self.key} help")
        return self

    @property
    def localized_label(self) -> Localized:
        return Localized(ko=self.label, en=self.label_en)

    @property
    def localized_help(self) -> Localized | None:
        return _paired(self.help, self.help_en, self.key)


class SharedTestMerchantId(_Strict):
    merchant_id: str = Field(alias="merchantId", min_length=1, max_length=100)
    label: str = Field(min_length=1, max_length=100)
    label_en: str | None = Field(default=None, alias="labelEn", min_length=1, max_length=100)

    _check_english = field_validator("label_en")(_english)

    @property
    def localized_label(self) -> Localized:
        return Localized(ko=self.label, en=self.label_en)


class PaymentModule(_Strict):
    code: str = Field(pattern=_CODE)
    name: str = Field(min_length=1, max_length=200)
    name_en: str | None = Field(default=None, alias="nameEn", min_length=1, max_length=200)
    versions: tuple[ModuleVersion, ...] = Field(min_length=1)
    purposes: tuple[ChannelPurpose, ...] = Field(min_length=1)
    merchant_id_label: str = Field(alias="merchantIdLabel", min_length=1, max_length=100)
    merchant_id_label_en: str | None = Field(
        default=None, alias="merchantIdLabelEn", min_length=1, max_length=100
    )
    merchant_id_pattern: str | None = Field(default=None, alias="merchantIdPattern")
    merchant_id_help: str | None = Field(default=None, alias="merchantIdHelp", max_length=500)
    merchant_id_help_en: str | None = Field(default=None, alias="merchantIdHelpEn", max_length=500)
    credential_fields: tuple[CredentialField, ...] = Field(alias="credentialFields")
    shared_test_merchant_ids: tuple[SharedTestMerchantId, ...] = Field(
        default=(), alias="sharedTestMerchantIds"
    )

    _check_pattern = field_validator("merchant_id_pattern")(_valid_pattern)
    _check_english = field_validator("name_en", "merchant_id_label_en")(_english)

    @model_validator(mode="after")
    def _unique_keys(self) -> PaymentModule:
        _paired(self.merchant_id_help, self.merchant_id_help_en, f"module {self.code} MID help")
        keys = [f.key for f in self.credential_fields]
        if len(keys) != len(set(keys)):
            raise ValueError(f"module {self.code}: duplicate credential keys")
        mids = [m.merchant_id for m in self.shared_test_merchant_ids]
        if len(mids) != len(set(mids)):
            raise ValueError(f"module {self.code}: duplicate shared test MIDs")
        return self

    @property
    def localized_name(self) -> Localized:
        return Localized(ko=self.name, en=self.name_en)

    @property
    def localized_merchant_id_label(self) -> Localized:
        return Localized(ko=self.merchant_id_label, en=self.merchant_id_label_en)

    @property
    def localized_merchant_id_help(self) -> Localized | None:
        return _paired(self.merchant_id_help, self.merchant_id_help_en, self.code)

    def field(self, key: str) -> CredentialField | None:
        return next((f for f in self.credential_fields if f.key == key), None)

    def shared_test_mid(self, merchant_id: str) -> SharedTestMerchantId | None:
        return next(
            (m for m in self.shared_test_merchant_ids if m.merchant_id == merchant_id), None
        )


class ProviderInfo(_Strict):
    provider: PgProvider
    display_name: str = Field(alias="displayName", min_length=1, max_length=100)
    display_name_en: str | None = Field(
        default=None, alias="displayNameEn", min_length=1, max_length=100
    )
    modules: tuple[PaymentModule, ...] = Field(min_length=1)

    _check_english = field_validator("display_name_en")(_english)

    @property
    def localized_display_name(self) -> Localized:
        return Localized(ko=self.display_name, en=self.display_name_en)

    def module(self, code: str) -> PaymentModule | None:
        return next((m for m in self.modules if m.code == code), None)


class Catalog(_Strict):
    providers: tuple[ProviderInfo, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Catalog:
        providers = [p.provider for p in self.providers]
        if len(providers) != len(set(providers)):
            raise ValueError("duplicate providers in the catalog")
        codes = [m.code for p in self.providers for m in p.modules]
        if len(codes) != len(set(codes)):
            raise ValueError("module codes must be unique across the catalog")
        return self

    def provider(self, provider: PgProvider) -> ProviderInfo | None:
        return next((p for p in self.providers if p.provider == provider), None)

    def filtered(
        self, *, version: ModuleVersion | None, purpose: ChannelPurpose | None
    ) -> list[ProviderInfo]:
        """Providers with only the modules that serve `version` and `purpose`."""
        result = []
        for info in self.providers:
            modules = tuple(
                m
                for m in info.modules
                if (version is None or version in m.versions)
                and (purpose is None or purpose in m.purposes)
            )
            if modules:
                result.append(info.model_copy(update={"modules": modules}))
        return result


def parse_catalog(raw: str) -> Catalog:
    return Catalog.model_validate(json.loads(raw))


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The shipped catalog; invalid data fails loudly (the app loads it at start-up)."""
    raw = resources.files("gql_api.pg_catalog").joinpath("catalog.json").read_text("utf-8")
    return parse_catalog(raw)
