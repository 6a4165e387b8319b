"""Channel groups (스마트 라우팅): a store's channels of one mode, picked by weight."""
