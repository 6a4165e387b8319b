"""Members of a merchant: invitations, roles, removal, ownership transfer."""
