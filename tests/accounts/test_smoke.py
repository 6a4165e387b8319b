from tests.support import Api


async def test_sign_up_then_viewer(api: Api) -> None:
    owner = await api.sign_up()
    result = await api.gql(
        "{ viewer { role user { email } merchant { name } } }", token=owner.token
    )
    assert result.data["viewer"]["role"] == "OWNER"
