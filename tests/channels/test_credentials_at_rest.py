"""Secret PG credentials are stored only encrypted: no clear copy in any table or file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from gql_api.security.encryption import EncryptionKeyError
from tests.channels.helpers import (
    create_channel,
    decrypt,
    delete_channel,
    inicis_live_input,
    kcp_live_input,
    stored_credentials,
    update_channel,
)
from tests.support import Api, SignedUp

INICIS_SECRETS = {
    "signKey": "RestSignKey-3f9a1c77e2b14d0e",
    "iniApiKey": "RestIniApiKey-8c2e55d1",
    "iniApiIv": "RestIniApiIv-0b7d",
}
INICIS_REPLACEMENT = "RestReplacedSignKey-6e40aa19"
KCP_SECRETS = {
    "certificate": "-----BEGIN CERTIFICATE-----\nRestKcpCertificateBody-19d3e0\n-----END",
    "privateKey": "-----BEGIN PRIVATE KEY-----\nRestKcpPrivateKeyBody-a5c2f1\n-----END",
    "privateKeyPassword": "RestKcpKeyPassword-77b1",
}
KCP_GROUP_ID = "RestPlainGroupId-5521"  # not secret: stored in clear on purpose
NICE_CANCEL_PASSWORD = "Cx9#pQ7!zW"  # secret, 10 characters (the field's maximum)
NICE_MERCHANT_KEY = "RestNiceMerchantKey-c0ffee42"
TOSS_SECRET_KEY = "RestTossSecretKey-live_sk_91ab"
TOSS_CLIENT_KEY = "RestTossClientKey-live_ck_plain"  # not secret

SECRETS = [
    *INICIS_SECRETS.values(),
    INICIS_REPLACEMENT,
    *KCP_SECRETS.values(),
    NICE_CANCEL_PASSWORD,
    NICE_MERCHANT_KEY,
    TOSS_SECRET_KEY,
]


async def create_channels_with_secrets(api: Api, owner: SignedUp) -> list[dict[str, Any]]:
    """Several providers' secrets, one of them replaced by an update, one channel deleted."""
    store_id = owner.representative_store_id
    inicis = await create_channel(
        api,
        owner.token,
        inicis_live_input(
            store_id,
            "Rest INICIS",
            credentials=[{"key": k, "value": v} for k, v in INICIS_SECRETS.items()],
        ),
    )
    kcp = await create_channel(
        api,
        owner.token,
        kcp_live_input(
            store_id,
            "Rest KCP",
            credentials=[
                *({"key": k, "value": v} for k, v in KCP_SECRETS.items()),
                {"key": "groupId", "value": KCP_GROUP_ID},
            ],
        ),
    )
    nice = await create_channel(
        api,
        owner.token,
        {
            "storeId": store_id,
            "mode": "LIVE",
            "pgProvider": "NICE_V2",
            "moduleCode": "NICE_V2_PAYMENT",
            "name": "Rest NICE",
            "pgMerchantId": "nicepay00m",
            "credentials": [
                {"key": "merchantKey", "value": NICE_MERCHANT_KEY},
                {"key": "cancelPassword", "value": NICE_CANCEL_PASSWORD},
            ],
        },
    )
    toss = await create_channel(
        api,
        owner.token,
        {
            "storeId": store_id,
            "mode": "TEST",
            "pgProvider": "TOSSPAYMENTS",
            "moduleCode": "TOSSPAYMENTS_PAYMENT",
            "name": "Rest Toss",
            "pgMerchantId": "tosstest01",
            "credentials": [
                {"key": "clientKey", "value": TOSS_CLIENT_KEY},
                {"key": "secretKey", "value": TOSS_SECRET_KEY},
            ],
        },
    )
    updated = await update_channel(
        api,
        owner.token,
        {
            "id": inicis["id"],
            "version": 1,
            "credentials": [{"key": "signKey", "value": INICIS_REPLACEMENT}],
        },
    )
    assert updated["userErrors"] == [], updated
    deleted = await delete_channel(api, owner.token, nice["id"])
    assert deleted["userErrors"] == [], deleted
    return [updated["channel"], kcp, nice, toss]


async def database_text(app: Starlette, database_url: str) -> str:
    """Everything the database holds, as text: raw files (SQLite) or every text column."""
    engine = app.state.app_state.engine
    if engine.dialect.name == "sqlite":
        path = Path(make_url(database_url).database or "")
        files = [path, path.with_name(path.name + "-wal")]
        assert files[1].exists(), "expected a write-ahead log next to the SQLite file"
        raw = b"".join(f.read_bytes() for f in files if f.exists())
        return raw.decode("utf-8", errors="replace")
    chunks: list[str] = []
    async with engine.connect() as conn:
        columns = (
            await conn.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() "
                    "AND data_type IN ('text', 'character varying', 'character', 'json', "
                    "'jsonb')"
                )
            )
        ).all()
        assert any(table == "channels" for table, _ in columns)
        for table, column in columns:
            values = await conn.execute(text(f'SELECT "{column}"::text FROM "{table}"'))
            chunks.extend(value for (value,) in values if value is not None)
    return "\n".join(chunks)


async def test_no_secret_credential_is_stored_in_clear(
    api: Api, owner: SignedUp, app: Starlette, database_url: str
) -> None:
    # given
    channels = await create_channels_with_secrets(api, owner)

    # when
    dump = await database_text(app, database_url)

    # then: the scan sees the data (non-secret values and names are there) ...
    assert KCP_GROUP_ID in dump
    assert TOSS_CLIENT_KEY in dump
    assert all(channel["channelKey"] in dump for channel in channels)
    # ... but no secret, nor a recognisable part of one
    for secret in SECRETS:
        assert secret not in dump, secret
    for fragment in ("RestSignKey", "RestKcpCertificateBody", "RestKcpPrivateKeyBody"):
        assert fragment not in dump


async def test_the_audit_log_holds_no_secret(api: Api, owner: SignedUp, app: Starlette) -> None:
    # given
    await create_channels_with_secrets(api, owner)

    # when
    async with app.state.app_state.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM audit_events"))).all()

    # then
    dump = "\n".join(str(tuple(row)) for row in rows)
    assert len(rows) >= 6  # 4 creations, 1 update, 1 deletion (and the sign-up)
    assert "channel.create" in dump
    assert "channel.update" in dump
    assert "channel.delete" in dump
    for secret in SECRETS:
        assert secret not in dump, secret


async def test_api_responses_show_secrets_only_masked(api: Api, owner: SignedUp) -> None:
    # when
    channels = await create_channels_with_secrets(api, owner)

    # then
    shown = str(channels)
    for secret in SECRETS:
        assert secret not in shown, secret
    kcp = {c["key"]: c for c in channels[1]["credentials"]}
    assert kcp["groupId"]["value"] == KCP_GROUP_ID
    assert kcp["certificate"]["maskedValue"] == "••••-END"
    nice = {c["key"]: c for c in channels[2]["credentials"]}
    assert nice["cancelPassword"]["maskedValue"] == "••••"


async def test_stored_ciphertexts_decrypt_to_the_values_sent(
    api: Api, owner: SignedUp, app: Starlette
) -> None:
    # given
    inicis, kcp, _, _ = await create_channels_with_secrets(api, owner)

    # when
    inicis_stored = await stored_credentials(app, inicis["channelKey"])
    kcp_stored = await stored_credentials(app, kcp["channelKey"])

    # then
    expected_inicis = {**INICIS_SECRETS, "signKey": INICIS_REPLACEMENT}
    for key, value in expected_inicis.items():
        assert set(inicis_stored[key]) == {"cipher", "masked"}
        assert decrypt(app, inicis["channelKey"], key, inicis_stored[key]["cipher"]) == value
    for key, value in KCP_SECRETS.items():
        assert decrypt(app, kcp["channelKey"], key, kcp_stored[key]["cipher"]) == value
    assert kcp_stored["groupId"] == {"value": KCP_GROUP_ID}


async def test_a_ciphertext_is_bound_to_its_channel_and_field(
    api: Api, owner: SignedUp, app: Starlette
) -> None:
    # given
    inicis, kcp, _, _ = await create_channels_with_secrets(api, owner)
    cipher = (await stored_credentials(app, inicis["channelKey"]))["signKey"]["cipher"]

    # when / then: copied onto another channel or field, it does not decrypt
    with pytest.raises(EncryptionKeyError):
        decrypt(app, kcp["channelKey"], "signKey", cipher)
    with pytest.raises(EncryptionKeyError):
        decrypt(app, inicis["channelKey"], "iniApiKey", cipher)
