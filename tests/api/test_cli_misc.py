"""CLI: version, --help, config, migrate, unknown commands, .env handling."""
import re

import pytest
import requests

from conftest import free_port, run_bookd


def config_map(text):
    out = {}
    for ln in text.splitlines():
        if not ln.strip():
            continue
        assert re.match(r"^[A-Z][A-Z0-9_]*=", ln), f"not NAME=value: {ln!r}"
        k, v = ln.split("=", 1)
        out[k] = v
    return out


def test_version():
    p = run_bookd(["version"])
    assert p.returncode == 0, p.stderr
    first = p.stdout.splitlines()[0]
    assert re.match(r"^bookd v?\d+\.\d+", first), first


def test_help_lists_commands():
    p = run_bookd(["--help"])
    assert p.returncode == 0, p.stderr
    for cmd in ("serve", "import", "migrate", "config", "version"):
        assert re.search(rf"\b{cmd}\b", p.stdout), f"{cmd} not in --help output:\n{p.stdout}"


@pytest.mark.parametrize("args", [["frobnicate"], ["serv"], ["--no-such-flag"]])
def test_unknown_command_exit_2(args, tmp_path):
    p = run_bookd(args, data_dir=tmp_path, cwd=tmp_path, timeout=10)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stderr.strip(), "unknown command should explain itself on stderr"


def test_config_shows_effective_values(tmp_path):
    port = free_port()
    p = run_bookd(["config"], data_dir=tmp_path, cwd=tmp_path, env={
        "BOOKD_PORT": str(port), "BOOKD_HOST": "127.0.0.1", "BOOKD_LOG_LEVEL": "debug",
    })
    assert p.returncode == 0, p.stderr
    cfg = config_map(p.stdout)
    assert cfg.get("BOOKD_PORT") == str(port)
    assert cfg.get("BOOKD_HOST") == "127.0.0.1"
    assert cfg.get("BOOKD_DATA_DIR") == str(tmp_path)
    assert cfg.get("BOOKD_LOG_LEVEL") == "debug"
    assert "BOOKD_MAX_BODY" in cfg
    assert cfg.get("BOOKD_CORS_ORIGINS") == "http://localhost:3000"


def test_config_masks_api_key(tmp_path):
    secret = "s3cr3t-value-do-not-print"
    p = run_bookd(["config"], data_dir=tmp_path, cwd=tmp_path,
                  env={"BOOKD_API_KEY": secret})
    assert p.returncode == 0, p.stderr
    assert secret not in p.stdout and secret not in p.stderr
    assert config_map(p.stdout).get("BOOKD_API_KEY") == "********"


def test_config_max_body_reflects_env(tmp_path):
    p = run_bookd(["config"], data_dir=tmp_path, cwd=tmp_path, env={"BOOKD_MAX_BODY": "4096"})
    assert p.returncode == 0, p.stderr
    assert config_map(p.stdout).get("BOOKD_MAX_BODY") == "4096"


BAD = {"BOOKD_PORT": "99999", "BOOKD_MAX_BODY": "abc"}


def test_config_invalid_names_both_variables(tmp_path):
    p = run_bookd(["config"], data_dir=tmp_path, cwd=tmp_path, env=BAD)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "BOOKD_PORT" in p.stderr and "BOOKD_MAX_BODY" in p.stderr, p.stderr


def test_serve_invalid_config_exits_2(tmp_path):
    p = run_bookd(["serve"], data_dir=tmp_path, cwd=tmp_path,
                  env=dict(BAD, BOOKD_HOST="127.0.0.1"), timeout=10)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "BOOKD_PORT" in p.stderr and "BOOKD_MAX_BODY" in p.stderr, p.stderr


@pytest.mark.parametrize("env,name", [
    ({"BOOKD_PORT": "99999"}, "BOOKD_PORT"),
    ({"BOOKD_PORT": "http"}, "BOOKD_PORT"),
    ({"BOOKD_MAX_BODY": "-5"}, "BOOKD_MAX_BODY"),
    ({"BOOKD_LOG_LEVEL": "chatty"}, "BOOKD_LOG_LEVEL"),
])
def test_config_single_invalid_value(tmp_path, env, name):
    p = run_bookd(["config"], data_dir=tmp_path, cwd=tmp_path, env=env)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert name in p.stderr, p.stderr


def test_migrate(tmp_path):
    data = tmp_path / "mig"
    data.mkdir()
    p1 = run_bookd(["migrate"], data_dir=data, cwd=tmp_path)
    assert p1.returncode == 0, p1.stderr
    m1 = re.search(r"\d+", p1.stdout)
    assert m1, f"migrate should print the schema version: {p1.stdout!r}"
    p2 = run_bookd(["migrate"], data_dir=data, cwd=tmp_path)
    assert p2.returncode == 0, p2.stderr
    m2 = re.search(r"\d+", p2.stdout)
    assert m2 and m2.group(0) == m1.group(0), (p1.stdout, p2.stdout)


def test_migrate_then_serve(server_factory, tmp_path):
    data = tmp_path / "mig2"
    data.mkdir()
    assert run_bookd(["migrate"], data_dir=data, cwd=tmp_path).returncode == 0
    srv = server_factory(data_dir=data)
    assert srv.get("/health/ready").json()["checks"]["database"] == "ok"
    assert srv.create_book(title="after migrate")["title"] == "after migrate"


# ------------------------------------------------------------------ .env

def test_dotenv_applies_to_config(tmp_path):
    port = free_port()
    (tmp_path / ".env").write_text(f"BOOKD_PORT={port}\nBOOKD_MAX_BODY=2048\n")
    p = run_bookd(["config"], data_dir=tmp_path / "d", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    cfg = config_map(p.stdout)
    assert cfg.get("BOOKD_PORT") == str(port)
    assert cfg.get("BOOKD_MAX_BODY") == "2048"


def test_real_env_beats_dotenv(tmp_path):
    p_file, p_env = free_port(), free_port()
    (tmp_path / ".env").write_text(f"BOOKD_PORT={p_file}\nBOOKD_MAX_BODY=2048\n")
    p = run_bookd(["config"], data_dir=tmp_path / "d", cwd=tmp_path,
                  env={"BOOKD_PORT": str(p_env)})
    assert p.returncode == 0, p.stderr
    cfg = config_map(p.stdout)
    assert cfg.get("BOOKD_PORT") == str(p_env)
    assert cfg.get("BOOKD_MAX_BODY") == "2048"


def test_dotenv_api_key_masked(tmp_path):
    (tmp_path / ".env").write_text("BOOKD_API_KEY=dotenv-secret-123\n")
    p = run_bookd(["config"], data_dir=tmp_path / "d", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "dotenv-secret-123" not in p.stdout + p.stderr
    assert config_map(p.stdout).get("BOOKD_API_KEY") == "********"


def test_serve_uses_dotenv_port(server_factory, tmp_path):
    port = free_port()
    cwd = tmp_path / "envdir"
    cwd.mkdir()
    (cwd / ".env").write_text(f"BOOKD_PORT={port}\n")
    srv = server_factory(data_dir=tmp_path / "envdata", cwd=cwd, port=port, set_port=False)
    assert srv.get("/health/live").status_code == 200


def test_serve_env_port_beats_dotenv(server_factory, tmp_path):
    p_file, p_env = free_port(), free_port()
    cwd = tmp_path / "envdir2"
    cwd.mkdir()
    (cwd / ".env").write_text(f"BOOKD_PORT={p_file}\n")
    srv = server_factory(data_dir=tmp_path / "envdata2", cwd=cwd, port=p_env)
    assert srv.get("/health/live").status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{p_file}/health/live", timeout=2)
