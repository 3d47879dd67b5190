"""Users, roles and login sessions for the panel.

Passwords are hashed with Argon2id (argon2-cffi). Login tokens are random and only their SHA-256 is stored,
so a copy of the database does not let anyone in. Each login session carries its own CSRF token.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import string
import time
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from store import bans
from store.db import Store, StoreError
from store.messages import M_, N_

# What a role may do. The seeds' custom-role permissions are the first four.
PERMISSIONS: dict[str, str] = {
    "view_profiles": N_("View profiles (the voter's About pane)"),
    "view_script": N_("View scripts"),
    "view_forms": N_("View forms (survey questions)"),
    "make_calls": N_("Make calls"),
    "manage_efforts": N_("Create and run phone-bank efforts"),
    "view_results": N_("View results and export"),
    "coach_callers": N_("Coach callers (listen, whisper, barge on a live call)"),
    "manage_users": N_("Manage users and roles"),
}
CALLER_PERMISSIONS = ["view_profiles", "view_script", "view_forms", "make_calls"]
BUILTIN_ROLES: dict[str, list[str]] = {
    "admin": list(PERMISSIONS),
    "manager": [*CALLER_PERMISSIONS, "manage_efforts", "view_results", "coach_callers"],
    "caller": CALLER_PERMISSIONS,
}
# The built-in roles' names as words for the pages (shown through |translate); a custom role shows as named.
BUILTIN_ROLE_WORDS = (N_("admin"), N_("manager"), N_("caller"))
LOGIN_TTL_S = 12 * 3600
SHIFT_LOGIN_TTL_S = 12 * 3600
MIN_PASSWORD = 8

_hasher = PasswordHasher()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_roles(store: Store) -> None:
    for name, perms in BUILTIN_ROLES.items():
        store.conn.execute(
            "INSERT INTO roles (name, permissions, builtin) VALUES (?, ?, 1) ON CONFLICT(name) "
            "DO UPDATE SET permissions = excluded.permissions",
            (name, json.dumps(perms)),
        )


def roles(store: Store) -> list[dict[str, Any]]:
    """Every role (the panel seeds the built-in ones when it starts)."""
    return [
        {**r, "permissions": json.loads(r["permissions"])}
        for r in store._all("SELECT * FROM roles ORDER BY builtin DESC, name")
    ]


def save_role(store: Store, name: str, permissions: list[str]) -> dict[str, Any]:
    name = name.strip().lower()
    if not name or not all(ch in string.ascii_lowercase + string.digits + "_-" for ch in name):
        raise StoreError(M_("role name: letters, digits, '-' and '_' only"))
    if name in BUILTIN_ROLES:
        raise StoreError(M_("%(role)s is a built-in role and cannot be changed", role=name))
    unknown = set(permissions) - set(PERMISSIONS)
    if unknown:
        raise StoreError(M_("unknown permissions: %(names)s", names=", ".join(sorted(unknown))))
    store.conn.execute(
        "INSERT INTO roles (name, permissions) VALUES (?, ?) ON CONFLICT(name) "
        "DO UPDATE SET permissions = excluded.permissions",
        (name, json.dumps(sorted(permissions))),
    )
    return {"name": name, "permissions": sorted(permissions), "builtin": 0}


def role_permissions(store: Store, role: str) -> set[str]:
    row = store._one("SELECT permissions FROM roles WHERE name = ?", (role,))
    return set(json.loads(row["permissions"])) if row else set()


def hash_password(password: str) -> str:
    """Argon2id; ~0.1 s of CPU on purpose — callers on an event loop run it in a thread."""
    return _hasher.hash(password)


def create_user(
    store: Store,
    username: str,
    password: str,
    role: str,
    *,
    name: str = "",
    email: str = "",
    phone: str = "",
    campaign_id: int | None = None,
    expires_at: float | None = None,
    password_hash: str | None = None,
) -> dict[str, Any]:
    """``password_hash``: already made from ``password`` by ``hash_password`` (off the event loop)."""
    username = username.strip().lower()
    if not username:
        raise StoreError(M_("username is required"))
    if len(password) < MIN_PASSWORD:
        raise StoreError(M_("password must be at least %(n)s characters", n=MIN_PASSWORD))
    if password_hash is None:
        password_hash = hash_password(password)
    if store._one("SELECT 1 FROM roles WHERE name = ?", (role,)) is None:
        if role not in BUILTIN_ROLES:
            raise StoreError(M_("no role %(role)r", role=role))
        ensure_roles(store)  # a store the panel never opened (the command line's first admin)
    try:
        uid = store.conn.execute(
            "INSERT INTO users (username, name, email, phone, password_hash, role, campaign_id, expires_at, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                username,
                name.strip(),
                email.strip(),
                phone.strip(),
                password_hash,
                role,
                campaign_id,
                expires_at,
                time.time(),
            ),
        ).lastrowid
    except sqlite3.IntegrityError as exc:
        raise StoreError(M_("username %(name)r is taken", name=username)) from exc
    user = user_by_id(store, int(uid or 0))
    assert user is not None
    return user


def check_shift_signin(name: str, email: str, phone: str) -> None:
    if not name.strip():
        raise StoreError(M_("your name is required"))
    if "@" not in email:
        raise StoreError(M_("a valid email address is required"))
    if len([ch for ch in phone if ch.isdigit()]) < 7:
        raise StoreError(M_("a valid phone number is required"))


def shift_password() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


def create_shift_login(
    store: Store,
    campaign_id: int,
    name: str,
    email: str,
    phone: str,
    *,
    password: str | None = None,
    password_hash: str | None = None,
) -> tuple[dict[str, Any], str]:
    """A temporary caller login for one effort (sign in with name, email, phone). Returns (user, password).

    Pass ``password`` and its ``password_hash`` (from ``shift_password`` and ``hash_password``) to keep the
    hashing off the event loop."""
    check_shift_signin(name, email, phone)
    alphabet = string.ascii_lowercase + string.digits
    for _ in range(20):
        username = "shift-" + "".join(secrets.choice(alphabet) for _ in range(6))
        if store._one("SELECT 1 FROM users WHERE username = ?", (username,)) is None:
            break
    password = password or shift_password()
    user = create_user(
        store,
        username,
        password,
        "caller",
        name=name,
        email=email,
        phone=phone,
        campaign_id=campaign_id,
        expires_at=time.time() + SHIFT_LOGIN_TTL_S,
        password_hash=password_hash,
    )
    return user, password


def user_by_id(store: Store, user_id: int) -> dict[str, Any] | None:
    return store._one(
        "SELECT id, username, name, email, phone, role, campaign_id, expires_at, disabled, created_at "
        "FROM users WHERE id = ?",
        (user_id,),
    )


def users(store: Store) -> list[dict[str, Any]]:
    return store._all(
        "SELECT id, username, name, email, role, campaign_id, expires_at, disabled, created_at FROM users ORDER BY id"
    )


def set_role(store: Store, user_id: int, role: str) -> None:
    if store._one("SELECT 1 FROM roles WHERE name = ?", (role,)) is None:
        raise StoreError(M_("no role %(role)r", role=role))
    store.conn.execute("UPDATE users SET role = ? WHERE id = ?", (role, user_id))


def authenticate(store: Store, username: str, password: str) -> dict[str, Any] | None:
    row = store._one("SELECT * FROM users WHERE username = ?", (username.strip().lower(),))
    if row is None:
        _hasher.hash(password)  # same work either way: no timing hint that the username exists
        return None
    try:
        _hasher.verify(row["password_hash"], password)
    except (VerificationError, InvalidHashError):
        return None
    if row["disabled"] or (row["expires_at"] is not None and row["expires_at"] < time.time()):
        return None
    return user_by_id(store, row["id"])


def start_login(store: Store, user_id: int, ttl_s: float = LOGIN_TTL_S) -> tuple[str, str]:
    """Returns (cookie token, csrf token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = time.time()
    store.conn.execute(
        "INSERT INTO auth_sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        (_token_hash(token), user_id, csrf, now, now + ttl_s),
    )
    return token, csrf


def login_for_token(store: Store, token: str) -> dict[str, Any] | None:
    """The user behind a cookie token, with ``csrf`` and ``permissions``; None if unknown or expired."""
    row = store._one(
        "SELECT a.csrf, a.expires_at AS login_expires_at, u.id, u.username, u.name, u.email, u.phone, u.role, "
        "u.campaign_id, u.expires_at, u.disabled FROM auth_sessions a JOIN users u ON u.id = a.user_id "
        "WHERE a.token_hash = ?",
        (_token_hash(token),),
    )
    now = time.time()
    if row is None or row["login_expires_at"] < now or row["disabled"]:
        return None
    if row["expires_at"] is not None and row["expires_at"] < now:
        return None
    row["permissions"] = role_permissions(store, row["role"])
    return row


def coach_standing(store: Store, user_id: int, campaign_id: int | None) -> str:
    """Why this user may not coach a caller of the effort now ("" : they may). The live check a coaching must
    pass for as long as it lasts, not only when it starts: gone, disabled or expired, a role without
    ``coach_callers``, no live login left (logged out, expired), or banned from the effort."""
    row = store._one("SELECT id, email, phone, role, expires_at, disabled FROM users WHERE id = ?", (user_id,))
    now = time.time()
    if row is None:
        return "deleted"
    if row["disabled"]:
        return "disabled"
    if row["expires_at"] is not None and row["expires_at"] < now:
        return "expired"
    if "coach_callers" not in role_permissions(store, row["role"]):
        return "no_permission"
    if store._one("SELECT 1 FROM auth_sessions WHERE user_id = ? AND expires_at >= ?", (user_id, now)) is None:
        return "logged_out"
    if campaign_id is not None and bans.user_banned(store, campaign_id, row):
        return "banned"
    return ""


def end_login(store: Store, token: str) -> None:
    store.conn.execute("DELETE FROM auth_sessions WHERE token_hash = ?", (_token_hash(token),))
