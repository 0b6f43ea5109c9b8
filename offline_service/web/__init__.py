"""The customer portal and the JSON API: a thin Starlette adapter over the engine and the store.

``create_app`` is in ``offline_service.web.app``, not re-exported here: each domain's routes
(``licensing.api``, ``licensing.pages``, ...) import this package's infrastructure (auth, kit,
services), and the app imports those routes, so importing the app here would make every one of
them a circular import.
"""
