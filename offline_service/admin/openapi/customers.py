"""The admin API's customers: organizations, users and groups."""

from __future__ import annotations

from typing import Any

from offline_service.accounts.membership import (
    MAX_ALLOWED_USERS,
    MAX_GROUP_NAME,
    MAX_NAME,
    MAX_ORGANIZATION_NAME,
)
from offline_service.accounts.models import Role
from offline_service.admin.api.customers import MAX_EMAIL
from offline_service.admin.models import Scope
from offline_service.admin.openapi._kit import CURSOR_QUERY, admin_op, create_op, limit_query, path_id
from offline_service.web.openapi_kit import (
    INT,
    TEXT,
    TIME,
    Schema,
    body,
    closed,
    id_schema,
    json_answer,
    nullable,
    obj,
    optional_id,
    query,
    ref,
)

__all__ = ["PATHS", "SCHEMAS"]

_ORG_ID = path_id(id_schema("organization"))
_USER_ID = path_id(id_schema("user"))
_GROUP_ID = path_id(id_schema("group"))
_NEXT = nullable("string", "Send as cursor for the next page; null on the last page")
_ALLOWED: Schema = {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_ALLOWED_USERS}
_INVITATION = obj(
    ["expiresAt"],
    {"expiresAt": {**TIME, "description": "When the mailed set-password link stops working"}},
    "A set-password link was mailed to the user (the link itself is in the mail only)",
)
_IDS: Schema = {"type": "array", "items": TEXT}

SCHEMAS: dict[str, Schema] = {
    "AdminOrganization": obj(
        ["id", "name", "allowedUsers", "createdAt"],
        {
            "id": id_schema("organization"),
            "name": TEXT,
            "allowedUsers": {**_ALLOWED, "description": "Cap on its enabled users; null: no cap"},
            "createdAt": TIME,
        },
    ),
    "AdminOrganizationPage": obj(
        ["organizations", "nextCursor"],
        {
            "organizations": {"type": "array", "items": ref("AdminOrganization"), "description": "By id"},
            "nextCursor": _NEXT,
        },
    ),
    "AdminOrganizationDetails": {
        "allOf": [
            ref("AdminOrganization"),
            obj(
                ["users", "enabledUsers", "groups", "licenses"],
                {
                    "users": {**INT, "description": "How many users it has"},
                    "enabledUsers": {
                        **INT,
                        "description": "How many of them are enabled (the cap counts these)",
                    },
                    "groups": {**INT, "description": "How many groups"},
                    "licenses": {**INT, "description": "How many licenses it owns"},
                },
            ),
        ]
    },
    "AdminOrganizationCreate": closed(
        ["name"],
        {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_ORGANIZATION_NAME},
            "allowedUsers": _ALLOWED,
        },
    ),
    "AdminUser": {
        "allOf": [
            ref("User"),
            obj(["disabled", "createdAt"], {"disabled": {"type": "boolean"}, "createdAt": TIME}),
        ]
    },
    "AdminUserInvited": {
        "allOf": [ref("AdminUser"), obj([], {"invitation": _INVITATION})],
    },
    "AdminUserPage": obj(
        ["users", "nextCursor"],
        {"users": {"type": "array", "items": ref("AdminUser"), "description": "By id"}, "nextCursor": _NEXT},
    ),
    "AdminUserCreate": closed(
        ["email", "role"],
        {
            "email": {"type": "string", "minLength": 3, "maxLength": MAX_EMAIL},
            "role": {"type": "string", "enum": [r.value for r in Role]},
            "organizationId": {**id_schema("organization"), "type": ["string", "null"]},
            "firstName": {"type": "string", "maxLength": MAX_NAME},
            "lastName": {"type": "string", "maxLength": MAX_NAME},
            "invite": {
                "type": "boolean",
                "description": "Mail the user a one-time link to set their password"
                " (needs OFFLINE_SERVICE_PUBLIC_URL or the account's custom domain)",
            },
        },
    ),
    "AdminGroup": obj(
        ["id", "organizationId", "name", "createdAt", "memberIds", "licenseIds"],
        {
            "id": id_schema("group"),
            "organizationId": id_schema("organization"),
            "name": TEXT,
            "createdAt": TIME,
            "memberIds": {**_IDS, "description": "Its members' user ids"},
            "licenseIds": {**_IDS, "description": "The ids of the licenses linked to it"},
        },
    ),
    "AdminGroups": obj(
        ["groups"], {"groups": {"type": "array", "items": ref("AdminGroup"), "description": "By name"}}
    ),
    "AdminGroupCreate": closed(
        ["organizationId", "name"],
        {
            "organizationId": id_schema("organization"),
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_GROUP_NAME},
        },
    ),
    "AdminGroupRenamed": obj(
        ["id", "organizationId", "name", "createdAt"],
        {
            "id": id_schema("group"),
            "organizationId": id_schema("organization"),
            "name": TEXT,
            "createdAt": TIME,
        },
    ),
    "AdminGroupChange": closed(
        ["name"], {"name": {"type": "string", "minLength": 1, "maxLength": MAX_GROUP_NAME}}
    ),
    "AdminGroupMember": obj(
        ["groupId", "userId", "member"],
        {"groupId": TEXT, "userId": TEXT, "member": {"type": "boolean"}},
    ),
    "AdminGroupLicense": obj(
        ["groupId", "licenseId", "linked"],
        {"groupId": TEXT, "licenseId": TEXT, "linked": {"type": "boolean"}},
    ),
}


def _user_verb(summary: str, answer: str, *errors: str) -> dict[str, Any]:
    return {
        "parameters": [_USER_ID],
        "post": admin_op(
            summary, Scope.CUSTOMERS_WRITE, json_answer(ref(answer), "The user"), "400", "404", *errors
        ),
    }


def _group_link(what: str, kind: str, name: str, answer: str, add: str, remove: str) -> dict[str, Any]:
    return {
        "parameters": [_GROUP_ID, {"name": name, "in": "path", "required": True, "schema": id_schema(kind)}],
        "post": admin_op(add, Scope.CUSTOMERS_WRITE, json_answer(ref(answer), what), "400", "404"),
        "delete": admin_op(remove, Scope.CUSTOMERS_WRITE, json_answer(ref(answer), what), "400", "404"),
    }


PATHS: dict[str, Any] = {
    "/v1/admin/organizations": {
        "get": admin_op(
            "The account's organizations, a page at a time by id",
            Scope.CUSTOMERS_READ,
            json_answer(ref("AdminOrganizationPage"), "One page"),
            "400",
            parameters=[limit_query("Organizations"), CURSOR_QUERY],
        ),
        "post": create_op(
            "Create an organization (its name unique in the account)",
            Scope.CUSTOMERS_WRITE,
            json_answer(ref("AdminOrganization"), "Created"),
            "400",
            "409",
            body=body("AdminOrganizationCreate"),
        ),
    },
    "/v1/admin/organizations/{id}": {
        "parameters": [_ORG_ID],
        "get": admin_op(
            "One organization, with how many users, groups and licenses it has",
            Scope.CUSTOMERS_READ,
            json_answer(ref("AdminOrganizationDetails"), "The organization"),
            "400",
            "404",
        ),
    },
    "/v1/admin/organizations/{id}/groups": {
        "parameters": [_ORG_ID],
        "get": admin_op(
            "An organization's groups, with their members and linked licenses",
            Scope.CUSTOMERS_READ,
            json_answer(ref("AdminGroups"), "The groups"),
            "400",
            "404",
        ),
    },
    "/v1/admin/users": {
        "get": admin_op(
            "The account's users, a page at a time by id",
            Scope.CUSTOMERS_READ,
            json_answer(ref("AdminUserPage"), "One page"),
            "400",
            "404",
            parameters=[
                query("organization", optional_id("organization"), "Only this organization's users"),
                limit_query("Users"),
                CURSOR_QUERY,
            ],
        ),
        "post": create_op(
            "Create a user, without a password; with invite, mail them a link to set one."
            " USER_LIMIT when the organization has its allowed users",
            Scope.CUSTOMERS_WRITE,
            json_answer(ref("AdminUserInvited"), "Created"),
            "400",
            "404",
            "409",
            "503",
            body=body("AdminUserCreate"),
        ),
    },
    "/v1/admin/users/{id}": {
        "parameters": [_USER_ID],
        "get": admin_op(
            "One user", Scope.CUSTOMERS_READ, json_answer(ref("AdminUser"), "The user"), "400", "404"
        ),
    },
    "/v1/admin/users/{id}/disable": _user_verb(
        "Disable a user: their sessions, tokens and set-password link end at once", "AdminUser"
    ),
    "/v1/admin/users/{id}/enable": _user_verb(
        "Enable a user again (USER_LIMIT when the organization has its allowed users)", "AdminUser", "409"
    ),
    "/v1/admin/users/{id}/invite": _user_verb(
        "Mail the user a new one-time link to set their password; earlier links end",
        "AdminUserInvited",
        "409",
        "503",
    ),
    "/v1/admin/groups": {
        "post": create_op(
            "Create a group in an organization (its name unique in the organization)",
            Scope.CUSTOMERS_WRITE,
            json_answer(ref("AdminGroup"), "Created"),
            "400",
            "404",
            "409",
            body=body("AdminGroupCreate"),
        ),
    },
    "/v1/admin/groups/{id}": {
        "parameters": [_GROUP_ID],
        "patch": admin_op(
            "Rename a group (the new name unique in its organization)",
            Scope.CUSTOMERS_WRITE,
            json_answer(ref("AdminGroupRenamed"), "The group, renamed"),
            "400",
            "404",
            "409",
            body=body("AdminGroupChange"),
        ),
        "delete": admin_op(
            "Delete a group with its memberships and license links; its users and licenses stay,"
            " and no seat changes",
            Scope.CUSTOMERS_WRITE,
            json_answer(ref("AdminRemoved"), "Removed"),
            "400",
            "404",
        ),
    },
    "/v1/admin/groups/{id}/members/{userId}": _group_link(
        "The membership",
        "user",
        "userId",
        "AdminGroupMember",
        "Add a user of the group's organization to the group",
        "Remove a user from the group",
    ),
    "/v1/admin/groups/{id}/licenses/{licenseId}": _group_link(
        "The link",
        "license",
        "licenseId",
        "AdminGroupLicense",
        "Link a license the group's organization owns to the group (any other: LICENSE_NOT_FOUND)",
        "Unlink a license from the group",
    ),
}
