"""The PG catalog: providers, their payment modules, credential fields and shared test MIDs."""
