"""Accounts: the vendor's account, organizations, people and groups, logins, sessions and tokens,
profiles, password links and mail.

Services: ``auth`` (logins, credentials), ``membership`` with ``scope`` (organizations, users,
groups, for the vendor and the organization admin alike), ``overview``, ``profile``,
``password_links``, ``password_reset`` (forgot password), ``mail``. Adapters: ``cli`` (the vendor's verbs), ``pages`` and
``organization_pages`` (the portal), ``api`` (the JSON API).
"""
