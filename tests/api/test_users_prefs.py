"""GET/PUT/PATCH /api/v1/users/me/preferences."""
import pytest

from conftest import ADMIN, TS_RE, assert_error, make_user

PREFS = "/api/v1/users/me/preferences"
FIELDS = {
    "software_background", "hardware_background", "learning_goals", "robotics_kit_experience",
    "experience_level", "preferred_language", "programming_languages", "preferred_topics",
    "gpu_access", "personalization_enabled", "content_complexity", "explanation_depth",
    "example_style",
}
FULL = {
    "software_background": "Python web developer, some C++",
    "hardware_background": "Arduino hobbyist",
    "learning_goals": "Build a ROS 2 mobile robot",
    "robotics_kit_experience": "TurtleBot 3",
    "experience_level": "intermediate",
    "preferred_language": "ur",
    "programming_languages": ["Python", "C++"],
    "preferred_topics": ["SLAM", "motion planning"],
    "gpu_access": True,
    "personalization_enabled": False,
    "content_complexity": "advanced",
    "explanation_depth": "detailed",
    "example_style": "code",
}


@pytest.fixture
def user(users_server):
    return make_user(users_server, tag="prefs")


def get(srv, h):
    r = srv.get(PREFS, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == FIELDS | {"updated_at"}, set(body) ^ (FIELDS | {"updated_at"})
    return body


def test_fresh_user_all_null(users_server, user):
    body = get(users_server, user["headers"])
    assert all(body[f] is None for f in FIELDS), body
    assert body["updated_at"] is None


def test_put_full_then_get(users_server, user):
    r = users_server.put(PREFS, json=FULL, headers=user["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert TS_RE.match(body["updated_at"])
    assert {k: body[k] for k in FIELDS} == FULL
    assert get(users_server, user["headers"]) == body


def test_put_replaces(users_server, user):
    assert users_server.put(PREFS, json=FULL, headers=user["headers"]).status_code == 200
    r = users_server.put(PREFS, json={"experience_level": "beginner"}, headers=user["headers"])
    assert r.status_code == 200, r.text
    body = get(users_server, user["headers"])
    assert body["experience_level"] == "beginner"
    assert all(body[f] is None for f in FIELDS - {"experience_level"}), body


def test_patch_merges_and_null_clears(users_server, user):
    assert users_server.put(PREFS, json=FULL, headers=user["headers"]).status_code == 200
    r = users_server.patch(PREFS, json={"preferred_language": "pt-BR", "gpu_access": None},
                           headers=user["headers"])
    assert r.status_code == 200, r.text
    body = get(users_server, user["headers"])
    expect = dict(FULL, preferred_language="pt-BR", gpu_access=None)
    assert {k: body[k] for k in FIELDS} == expect
    # an empty patch changes nothing
    r = users_server.patch(PREFS, json={}, headers=user["headers"])
    assert r.status_code == 200
    assert {k: r.json()[k] for k in FIELDS} == expect


def test_unknown_fields_ignored(users_server, user):
    r = users_server.put(PREFS, json={"example_style": "mixed", "user_id": "someone-else",
                                      "is_admin": True, "role": "admin"}, headers=user["headers"])
    assert r.status_code == 200, r.text
    body = get(users_server, user["headers"])
    assert body["example_style"] == "mixed"
    assert "user_id" not in body and "is_admin" not in body and "role" not in body
    assert users_server.get("/api/v1/auth/me", headers=user["headers"]).json()["role"] == "reader"


INVALID = [
    ("software_background", "x" * 2001),
    ("hardware_background", 42),
    ("learning_goals", "y" * 2001),
    ("robotics_kit_experience", "z" * 501),
    ("experience_level", "expert"),
    ("experience_level", "Beginner"),
    ("preferred_language", "english"),
    ("preferred_language", "e"),
    ("preferred_language", "en_US"),
    ("preferred_language", ""),
    ("preferred_language", 7),
    ("programming_languages", "Python"),
    ("programming_languages", ["p%d" % i for i in range(21)]),
    ("programming_languages", ["x" * 51]),
    ("programming_languages", [1, 2]),
    ("preferred_topics", ["t" * 101]),
    ("preferred_topics", ["t%d" % i for i in range(21)]),
    ("gpu_access", "true"),
    ("gpu_access", 1),
    ("personalization_enabled", "yes"),
    ("content_complexity", "complex"),
    ("explanation_depth", "verbose"),
    ("example_style", "video"),
    ("example_style", ["code"]),
]


@pytest.mark.parametrize("field,value", INVALID,
                         ids=[f"{f}-{i}" for i, (f, _) in enumerate(INVALID)])
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_invalid_values(users_server, prefs_user, method, field, value):
    h = prefs_user["headers"]
    before = get(users_server, h)
    r = users_server.request(method, PREFS, json={field: value}, headers=h)
    err = assert_error(r, 422, "validation_failed")
    assert [d["field"] for d in err["details"]] == [field], err
    assert get(users_server, h) == before


@pytest.fixture(scope="module")
def prefs_user(users_server):
    u = make_user(users_server, tag="prefs-invalid")
    r = users_server.put(PREFS, json=FULL, headers=u["headers"])
    assert r.status_code == 200
    return u


def test_several_invalid_fields_reported_together(users_server, user):
    r = users_server.put(PREFS, json={"experience_level": "guru", "gpu_access": "no",
                                      "learning_goals": "fine"}, headers=user["headers"])
    err = assert_error(r, 422, "validation_failed")
    assert {d["field"] for d in err["details"]} == {"experience_level", "gpu_access"}
    assert get(users_server, user["headers"])["learning_goals"] is None


def test_limits_are_characters(users_server, user):
    ok = {
        "software_background": "\u00e9" * 2000,  # 4000 bytes, 2000 characters
        "learning_goals": "x" * 2000,
        "robotics_kit_experience": "\u0686" * 500,
        "programming_languages": ["\u00e9" * 50] * 20,
        "preferred_topics": ["t" * 100] * 20,
        "preferred_language": "zh-Hant-TW",
    }
    r = users_server.put(PREFS, json=ok, headers=user["headers"])
    assert r.status_code == 200, r.text
    body = get(users_server, user["headers"])
    assert {k: body[k] for k in ok} == ok


def test_bad_bodies(users_server, user):
    h = user["headers"]
    assert_error(users_server.put(PREFS, data="[]", headers=dict(h, **{"Content-Type": "application/json"})),
                 422, "validation_failed")
    assert_error(users_server.put(PREFS, data="{", headers=dict(h, **{"Content-Type": "application/json"})),
                 400, "bad_request")
    assert_error(users_server.put(PREFS, data="a=b", headers=dict(h, **{"Content-Type": "text/plain"})),
                 415, "unsupported_media_type")


def test_anonymous_401(users_server):
    for m in ("GET", "PUT", "PATCH"):
        kw = {} if m == "GET" else {"json": {"experience_level": "beginner"}}
        assert_error(users_server.request(m, PREFS, **kw), 401, "unauthorized")


def test_each_user_sees_only_their_own(users_server):
    a = make_user(users_server, tag="pa")
    b = make_user(users_server, tag="pb")
    assert users_server.put(PREFS, json={"learning_goals": "A's secret goal"},
                            headers=a["headers"]).status_code == 200
    assert get(users_server, b["headers"])["learning_goals"] is None
    assert users_server.put(PREFS, json={"learning_goals": "B's goal"},
                            headers=b["headers"]).status_code == 200
    assert users_server.patch(PREFS, json={"gpu_access": True}, headers=b["headers"]).status_code == 200
    ga = get(users_server, a["headers"])
    assert ga["learning_goals"] == "A's secret goal" and ga["gpu_access"] is None
    # an API key of A sees A's, and the master key sees neither
    k = users_server.post("/api/v1/auth/api-keys", json={"name": "pk"}, headers=a["headers"]).json()
    assert get(users_server, {"X-API-Key": k["key"]})["learning_goals"] == "A's secret goal"
    gm = get(users_server, ADMIN)
    assert gm["learning_goals"] not in ("A's secret goal", "B's goal")
    # a query string or a forged header cannot select another user
    r = users_server.get(PREFS, headers=dict(b["headers"], **{"X-User-Id": a["id"]}),
                         params={"user_id": a["id"]})
    assert r.json()["learning_goals"] == "B's goal"
