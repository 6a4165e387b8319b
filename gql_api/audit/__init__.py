"""The audit log: who changed what, when, in which store; never a secret value."""
