"""URL rules of webhookSettingUpdate (with WEBHOOK_ALLOWED_NETWORKS opening loopback only).

Every refused URL leaves the saved setting as it was, and nothing is sent anywhere: the loopback
receiver, whose URL stays saved, sees no request, and the next test call still goes to it.
"""

from __future__ import annotations

import pytest

from tests.support import Api
from tests.webhooks.helpers import (
    delivered,
    errors_of,
    issue_secret,
    loopback_settings,  # noqa: F401  (the `settings` fixture)
    read_setting,
    save_setting,
    update_setting,
)
from tests.webhooks.receiver import Receivers

FORBIDDEN = "WEBHOOK_URL_FORBIDDEN"
INVALID = "INVALID_INPUT"
SETTING_NAME = "WEBHOOK_ALLOWED_NETWORKS"

# (case, URL with {port} of the receiver, mode, code, names the allow setting)
BAD_URLS = [
    ("ftp", "ftp://127.0.0.1:{port}/hook", "TEST", FORBIDDEN, False),
    ("credentials", "http://user:pass@127.0.0.1:{port}/hook", "TEST", FORBIDDEN, False),
    ("user-only", "http://user@127.0.0.1:{port}/hook", "TEST", FORBIDDEN, False),
    ("metadata", "http://169.254.169.254/latest/meta-data", "TEST", FORBIDDEN, True),
    ("ipv4-mapped", "http://[::ffff:10.0.0.1]/", "TEST", FORBIDDEN, True),
    ("private", "http://10.1.2.3/", "TEST", FORBIDDEN, True),
    ("10000-characters", "http://127.0.0.1:{port}/" + "a" * 10_000, "TEST", INVALID, False),
    ("http-in-live", "http://127.0.0.1:{port}/hook", "LIVE", FORBIDDEN, False),
    ("does-not-resolve", "http://nowhere.invalid/", "TEST", INVALID, False),
]

# Every other kind of non-public address, refused with the same code (and the setting named).
NON_PUBLIC = [
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # CGNAT
    "http://224.0.0.1/",  # multicast
    "http://240.0.0.1/",  # reserved
    "http://0.0.0.0:{port}/",
    "http://[fe80::1]/",  # link-local
    "http://[fd00::1]/",  # unique local
    "http://[::1]:{port}/",  # IPv6 loopback (only 127.0.0.0/8 is opened)
    "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
    "http://[2002:a00:1::]/",  # 6to4 of 10.0.0.1
    "http://[::ffff:169.254.169.254]/",
]

CONTROL_CHARACTERS = (
    "The URL must not contain spaces, control characters or other invisible characters; "
    "percent-encode them (a space is %20)."
)

MALFORMED = ["http:///hook", "http://exa mple.invalid/", "http://127.0.0.1:99999/", "http://"]


@pytest.mark.parametrize(
    ("url", "mode", "code", "names_setting"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_URLS],
)
async def test_a_refused_url_changes_nothing_and_sends_nothing(
    api: Api, receiver_pool: Receivers, url: str, mode: str, code: str, names_setting: bool
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    saved_url = receiver.url if mode == "TEST" else receiver.url.replace("http:", "https:")
    before = await save_setting(api, owner.token, store_id, saved_url, mode=mode)

    # when
    payload = await update_setting(
        api, owner.token, store_id, url.format(port=receiver.port), mode=mode
    )

    # then
    assert errors_of(payload) == [(code, ["input", "url"])]
    assert payload["webhookSetting"] is None
    message = payload["userErrors"][0]["message"]
    assert (SETTING_NAME in message) is names_setting, message
    assert await read_setting(api, owner.token, store_id, mode=mode) == before
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("urls", "code"),
    [
        pytest.param(NON_PUBLIC, FORBIDDEN, id="non-public"),
        pytest.param(MALFORMED, INVALID, id="malformed"),
    ],
)
async def test_other_refused_urls(
    api: Api, receiver_pool: Receivers, urls: list[str], code: str
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    before = await save_setting(api, owner.token, store_id, receiver.url)

    # when
    payloads = [
        await update_setting(api, owner.token, store_id, url.format(port=receiver.port))
        for url in urls
    ]

    # then
    for url, payload in zip(urls, payloads, strict=True):
        assert errors_of(payload) == [(code, ["input", "url"])], url
        assert payload["webhookSetting"] is None
        names_setting = SETTING_NAME in payload["userErrors"][0]["message"]
        assert names_setting is (code == FORBIDDEN), url
    assert await read_setting(api, owner.token, store_id) == before
    assert receiver.requests == []


# Characters no URL carries unencoded (httpx refuses to send to them), anywhere in the URL
# (NUL never gets this far: the request is refused at the door, gql_api.request_json).
UNPRINTABLE = {
    "control": "http://127.0.0.1:{port}/a\u0001b",
    "del": "http://127.0.0.1:{port}/a\u007fb",
    "c1-control": "http://127.0.0.1:{port}/a\u0085b",
    "tab": "http://127.0.0.1:{port}/a\tb",
    "line-break": "http://127.0.0.1:{port}/a\r\nX-Injected: 1",
    "space-in-path": "http://127.0.0.1:{port}/a b",
    "space-in-query": "http://127.0.0.1:{port}/hook?a=1 2",
    "no-break-space": "http://127.0.0.1:{port}/a\u00a0b",
    "zero-width-space": "http://127.0.0.1:{port}/a\u200bb",
    "line-separator": "http://127.0.0.1:{port}/a\u2028b",
    "in-the-host": "http://127.0.0.\u00011:{port}/hook",
}


@pytest.mark.parametrize("url", list(UNPRINTABLE.values()), ids=list(UNPRINTABLE))
async def test_a_url_with_a_control_or_invisible_character_is_refused(
    api: Api, receiver_pool: Receivers, url: str
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    await issue_secret(api, owner.token, store_id)
    before = await save_setting(api, owner.token, store_id, receiver.url)

    # when
    payload = await update_setting(api, owner.token, store_id, url.format(port=receiver.port))

    # then: refused as malformed, in words, and the saved URL still the one tested
    assert errors_of(payload) == [(INVALID, ["input", "url"])]
    assert payload["webhookSetting"] is None
    assert payload["userErrors"][0]["message"] == CONTROL_CHARACTERS
    assert await read_setting(api, owner.token, store_id) == before
    assert (await delivered(api, owner.token, store_id))["url"] == receiver.url


async def test_a_refused_url_is_not_where_the_test_call_goes(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    saved = await receiver_pool.start()
    await save_setting(api, owner.token, store_id, saved.url)
    await issue_secret(api, owner.token, store_id)
    refused = await update_setting(
        api, owner.token, store_id, f"http://user:pass@127.0.0.1:{saved.port}/other"
    )
    assert errors_of(refused) == [(FORBIDDEN, ["input", "url"])]

    # when
    delivery = await delivered(api, owner.token, store_id)

    # then
    assert delivery["url"] == saved.url
    assert [r.path for r in saved.requests] == ["/webhooks"]
    assert delivery["succeeded"] is True


async def test_a_url_of_2048_characters_is_accepted_and_2049_is_not(
    api: Api, receiver_pool: Receivers
) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id
    receiver = await receiver_pool.start()
    longest = receiver.url + "/" + "a" * (2048 - len(receiver.url) - 1)
    assert len(longest) == 2048

    # when
    accepted = await update_setting(api, owner.token, store_id, longest)
    refused = await update_setting(api, owner.token, store_id, longest + "a")

    # then
    assert accepted["userErrors"] == []
    assert errors_of(refused) == [(INVALID, ["input", "url"])]
    assert (await read_setting(api, owner.token, store_id))["url"] == longest
    assert receiver.requests == []


async def test_https_is_accepted_in_live_mode(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id

    # when
    saved = await save_setting(api, owner.token, store_id, "https://127.0.0.1:9/hook", mode="LIVE")

    # then
    assert (saved["mode"], saved["url"]) == ("LIVE", "https://127.0.0.1:9/hook")


async def test_an_ipv4_mapped_address_inside_an_allowed_network_is_accepted(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id

    # when
    saved = await save_setting(api, owner.token, store_id, "http://[::ffff:127.0.0.1]:9/")

    # then
    assert saved["url"] == "http://[::ffff:127.0.0.1]:9/"


async def test_surrounding_blanks_are_trimmed_and_a_blank_url_clears(api: Api) -> None:
    # given
    owner = await api.sign_up()
    store_id = owner.representative_store_id

    # when
    trimmed = await save_setting(api, owner.token, store_id, "  http://127.0.0.1:9/hook  ")
    blank = await save_setting(api, owner.token, store_id, "   ")

    # then
    assert trimmed["url"] == "http://127.0.0.1:9/hook"
    assert blank["url"] is None
