"""Access control: users, API tokens, roles and the audit log."""
