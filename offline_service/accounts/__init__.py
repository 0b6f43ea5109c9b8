"""Accounts: the vendor's account, organizations, people and groups, logins, sessions and tokens,
profiles, password links and mail."""
