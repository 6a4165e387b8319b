"""`serve` keeps argon2's working memory from one hash to the next (gql_api.runtime
.keep_hash_memory): a log-in does not map its 64 MiB afresh, so the kernel does not fault in
and zero 16,384 pages for each (about a sixth of a hash's time, taken from the cores the
event loop needs during a burst of log-ins)."""

from __future__ import annotations

import platform
from pathlib import Path

import httpx
import pytest

from tests.support import PASSWORD, Api
from tests.support_servers import serve

PAGES_PER_HASH = 64 * 1024 // 4  # 64 MiB of 4 KiB pages

LOG_IN = """
mutation LogIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) { session { token } userErrors { code } }
}
"""


def minor_faults(pid: int) -> int:
    """The page faults a process has taken that needed no disk (fresh or shared pages)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[7])  # minflt, the 10th field of the whole line


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
async def test_log_ins_reuse_the_memory_of_their_hashes(database_url: str) -> None:
    # given: a server with the default argon2 memory (64 MiB), one owner, and a first log-in
    env = {"ARGON2_MEMORY_KIB": "65536", "ARGON2_TIME_COST": "1"}
    with serve(database_url, extra_env=env) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
            api = Api(client)
            owner = await api.sign_up()
            credentials = {"input": {"email": owner.email, "password": PASSWORD}}
            assert (await api.gql(LOG_IN, credentials)).data["sessionCreate"]["session"]
            before = minor_faults(server.process.pid)

            # when: three more log-ins, each verifying its password with a 64 MiB hash
            for _ in range(3):
                answer = await api.gql(LOG_IN, credentials)
                assert answer.data["sessionCreate"]["session"]["token"]
            faults = minor_faults(server.process.pid) - before

    # then: together they faulted in fewer pages than one hash's memory
    assert faults < PAGES_PER_HASH, faults
