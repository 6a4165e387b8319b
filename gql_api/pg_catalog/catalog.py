"""Loading and validating the catalog data file shipped in the package (catalog.json)."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


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
    required: bool
    secret: bool
    pattern: str | None = None
    help: str | None = Field(default=None, max_length=500)

    _check_pattern = field_validator("pattern")(_valid_pattern)


class SharedTestMerchantId(_Strict):
    merchant_id: str = Field(alias="merchantId", min_length=1, max_length=100)
    label: str = Field(min_length=1, max_length=100)


class PaymentModule(_Strict):
    code: str = Field(pattern=_CODE)
    name: str = Field(min_length=1, max_length=200)
    versions: tuple[ModuleVersion, ...] = Field(min_length=1)
    purposes: tuple[ChannelPurpose, ...] = Field(min_length=1)
    merchant_id_label: str = Field(alias="merchantIdLabel", min_length=1, max_length=100)
    merchant_id_pattern: str | None = Field(default=None, alias="merchantIdPattern")
    merchant_id_help: str | None = Field(default=None, alias="merchantIdHelp", max_length=500)
    credential_fields: tuple[CredentialField, ...] = Field(alias="credentialFields")
    shared_test_merchant_ids: tuple[SharedTestMerchantId, ...] = Field(
        default=(), alias="sharedTestMerchantIds"
    )

    _check_pattern = field_validator("merchant_id_pattern")(_valid_pattern)

    @model_validator(mode="after")
    def _unique_keys(self) -> PaymentModule:
        keys = [f.key for f in self.credential_fields]
        if len(keys) != len(set(keys)):
            raise ValueError(f"module {self.code}: duplicate credential keys")
        mids = [m.merchant_id for m in self.shared_test_merchant_ids]
        if len(mids) != len(set(mids)):
            raise ValueError(f"module {self.code}: duplicate shared test MIDs")
        return self

    def field(self, key: str) -> CredentialField | None:
        return next((f for f in self.credential_fields if f.key == key), None)

    def shared_test_mid(self, merchant_id: str) -> SharedTestMerchantId | None:
        return next(
            (m for m in self.shared_test_merchant_ids if m.merchant_id == merchant_id), None
        )


class ProviderInfo(_Strict):
    provider: PgProvider
    display_name: str = Field(alias="displayName", min_length=1, max_length=100)
    modules: tuple[PaymentModule, ...] = Field(min_length=1)

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
