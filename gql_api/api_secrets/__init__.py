"""V2 API secrets (식별코드 · API Keys): issued once, hashed with argon2id, usable as
`Authorization: PortOne <secret>`."""
