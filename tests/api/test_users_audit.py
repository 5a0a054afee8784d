"""Audit events, and no secret in any log: a whole session of register,
login, refresh, reuse, logout, API keys and the CLI, then grep the logs."""
import json

from conftest import (
    ADMIN, JWT_SECRET, API_KEY, assert_error, bearer, cli_for, login, new_email, register,
    users_env,
)

KEYS = "/api/v1/auth/api-keys"


def audit_records(text):
    out = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("msg") == "audit":
            out.append(obj)
    return out


def secret_variants(s):
    """The secret itself and the parts an accidental log would carry."""
    out = {s}
    if s.count(".") == 2:                      # a JWT: its signature alone
        out.add(s.rsplit(".", 1)[1])
    if s.startswith("bk_"):                     # an API key: the secret after the prefix
        out.add(s.split("_", 2)[2])
    return out


def test_audit_events_and_no_secrets_in_logs(server_factory):
    srv = server_factory(env=users_env(BOOKD_LOG_LEVEL="debug"))
    secrets = []

    # register, failed logins, login
    email = new_email("audit")
    pw = "audit password one 7f3e9a"
    reg = register(srv, email, pw)
    uid = reg["user"]["id"]
    secrets += [pw, reg["access_token"], reg["refresh_token"]]
    wrong_pw = "wrong password 1c8d2b"
    secrets.append(wrong_pw)
    assert_error(login(srv, email, wrong_pw), 401, "unauthorized")
    assert_error(login(srv, new_email("nobody"), wrong_pw), 401, "unauthorized")
    lg = login(srv, email, pw).json()
    secrets += [lg["access_token"], lg["refresh_token"]]

    # refresh, then reuse of the spent token, then logout of another family
    rf = srv.post("/api/v1/auth/refresh", json={"refresh_token": reg["refresh_token"]}).json()
    secrets += [rf["access_token"], rf["refresh_token"]]
    assert_error(srv.post("/api/v1/auth/refresh", json={"refresh_token": reg["refresh_token"]}),
                 401, "unauthorized")
    assert srv.post("/api/v1/auth/logout", json={"refresh_token": lg["refresh_token"]}).status_code == 204

    # API keys: create, use, revoke
    k = srv.post(KEYS, json={"name": "audit key"}, headers=bearer(lg["access_token"])).json()
    secrets.append(k["key"])
    assert srv.get("/api/v1/auth/me", headers={"X-API-Key": k["key"]}).status_code == 200
    assert srv.delete(f"{KEYS}/{k['id']}", headers=bearer(lg["access_token"])).status_code == 204
    assert srv.get("/api/v1/auth/me", headers=ADMIN).status_code == 200
    mk = srv.post(KEYS, json={"name": "master's", "scopes": ["read", "write", "admin"]},
                  headers=ADMIN).json()
    secrets.append(mk["key"])

    # the CLI: add a user, change a role, make a key
    cli_email, cli_pw = new_email("audit-cli"), "cli password 5b7c0d9e"
    secrets.append(cli_pw)
    p_add = cli_for(srv, ["user", "add", "--email", cli_email, "--role", "editor"],
                    stdin_text=cli_pw + "\n")
    assert p_add.returncode == 0, p_add.stderr
    cli_uid = json.loads(p_add.stdout)["id"]
    p_role = cli_for(srv, ["user", "set-role", "--email", email, "--role", "editor"])
    assert p_role.returncode == 0, p_role.stderr
    p_key = cli_for(srv, ["apikey", "create", "--user", cli_email, "--scope", "write"])
    assert p_key.returncode == 0, p_key.stderr
    cli_key = p_key.stdout.strip()
    assert cli_key.startswith("bk_")
    secrets.append(cli_key)
    lc = login(srv, cli_email, cli_pw)
    assert lc.status_code == 200
    secrets += [lc.json()["access_token"], lc.json()["refresh_token"]]
    assert srv.post("/api/v1/books", json={"title": "audit book"},
                    headers={"X-API-Key": cli_key}).status_code == 201
    secrets += [JWT_SECRET, API_KEY]

    srv.assert_alive()
    assert srv.stop() == 0
    server_log = srv.log_text()
    cli_err = p_add.stderr + p_role.stderr + p_key.stderr

    # ---- no secret anywhere -------------------------------------------------
    leaks = []
    for s in secrets:
        for v in secret_variants(s):
            if v in server_log:
                leaks.append(f"server log contains {v[:12]}...")
            if v in cli_err:
                leaks.append(f"CLI stderr contains {v[:12]}...")
    for p in (p_add, p_role):
        for s in secrets:
            if s in p.stdout:
                leaks.append(f"CLI stdout contains {s[:12]}...")
    assert cli_key not in p_key.stderr
    assert "argon2" not in server_log + cli_err, "a password hash reached a log"
    assert not leaks, "\n".join(leaks)

    # ---- the audit trail ----------------------------------------------------
    events = audit_records(server_log)
    by = {}
    for e in events:
        by.setdefault(e.get("event"), []).append(e)
    for name in ("register", "login", "login_failed", "refresh_reuse", "key_created",
                 "key_revoked", "logout"):
        assert name in by, f"no {name!r} audit event; got {sorted(by)}"
    assert any(e.get("user_id") == uid for e in by["register"])
    assert any(e.get("user_id") == uid for e in by["login"])
    assert len(by["login_failed"]) == 2
    assert any(e.get("user_id") == uid for e in by["login_failed"])
    assert any(e.get("user_id") == uid for e in by["refresh_reuse"])
    assert any(e.get("user_id") == uid for e in by["logout"])
    assert any(e.get("user_id") == uid for e in by["key_created"])
    for e in events:
        assert "time" in e and e.get("level") == "info", e

    cli_events = {e.get("event"): e for e in audit_records(cli_err)}
    assert "role_changed" in cli_events, cli_err
    assert cli_events["role_changed"].get("user_id") == uid
    assert "key_created" in cli_events and cli_events["key_created"].get("user_id") == cli_uid
    assert "user_added" in cli_events and cli_events["user_added"].get("user_id") == cli_uid
