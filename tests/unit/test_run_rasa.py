"""scripts/run_rasa.py: the endpoints file a Rasa replica gets, and the port it listens on."""
from __future__ import annotations

import json
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

import scripts.run_rasa
from bot.config import Settings
from scripts.run_rasa import (
    ENDPOINTS,
    ROOT,
    RASA_ENV,
    rasa_environment,
    endpoints_for,
    endpoints_text,
    rasa_command,
    replica_port,
    shared_model,
    tracker_store_section,
)

WEEK = 7 * 24 * 3600
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"


def store_fields(text: str) -> dict[str, object]:
    """The keys of the `tracker_store` section (every value is written as a JSON scalar)."""
    lines = text.splitlines()
    section = lines[lines.index("tracker_store:") + 1:]
    fields = {}
    for line in section:
        if not line.startswith("  "):
            break
        key, value = line.strip().split(": ", 1)
        fields[key] = json.loads(value)
    return fields


def settings(**overrides: object) -> Settings:
    return Settings(rasa_token="t", **overrides)  # type: ignore[arg-type]


def test_a_password_url_gives_host_port_db_and_password_apart() -> None:
    fields = store_fields(tracker_store_section("redis://:s3cret@redis.internal:6380/5", WEEK))
    assert fields == {
        "type": "redis", "url": "redis.internal", "port": 6380, "db": 5, "key_prefix": "bansos",
        "use_ssl": False, "password": "s3cret", "record_exp": WEEK,
    }


def test_rediss_means_tls_and_percent_encoded_credentials_are_decoded() -> None:
    fields = store_fields(tracker_store_section("rediss://bansos:p%40ss%3Aw0rd@cache.example/2", WEEK))
    assert fields["use_ssl"] is True
    assert (fields["username"], fields["password"]) == ("bansos", "p@ss:w0rd")
    assert (fields["port"], fields["db"]) == (6379, 2)


def test_database_zero_and_no_password_by_default() -> None:
    fields = store_fields(tracker_store_section("redis://127.0.0.1", WEEK))
    assert (fields["url"], fields["port"], fields["db"]) == ("127.0.0.1", 6379, 0)
    assert "password" not in fields and "username" not in fields


def test_the_default_expiry_is_a_week_and_zero_keeps_conversations() -> None:
    default = Settings().rasa_tracker_expiry_seconds
    assert default == WEEK
    assert store_fields(tracker_store_section("redis://localhost/1", default))["record_exp"] == WEEK
    assert "record_exp" not in store_fields(tracker_store_section("redis://localhost/1", 0))


@pytest.mark.parametrize(
    "url", ["http://localhost:6379/0", "redis://", "redis://localhost/zero", "redis://localhost/0?ssl_cert_reqs=none"]
)
def test_an_unusable_url_is_refused_rather_than_half_read(url: str) -> None:
    with pytest.raises(ValueError, match="RASA_TRACKER_STORE_URL"):
        tracker_store_section(url, WEEK)


def test_a_prefix_rasa_would_ignore_is_refused() -> None:
    with pytest.raises(ValueError, match="letters and digits"):
        tracker_store_section("redis://localhost/0", WEEK, key_prefix="bansos-prod")


def test_without_a_tracker_store_url_rasa_gets_endpoints_yml_and_nothing_is_written(tmp_path: Path) -> None:
    endpoints = endpoints_for(settings(), 5005, directory=tmp_path)
    assert endpoints == ENDPOINTS
    assert list(tmp_path.iterdir()) == []
    command = rasa_command(Path("model.tar.gz"), "t", 5005, endpoints)
    assert command[command.index("--endpoints") + 1] == str(ROOT / "endpoints.yml")


def test_with_a_tracker_store_url_each_port_gets_its_own_private_file(tmp_path: Path) -> None:
    configured = settings(rasa_tracker_store_url="redis://:pw@localhost:6379/5", rasa_tracker_expiry_seconds=60)
    first, second = endpoints_for(configured, 5005, tmp_path), endpoints_for(configured, 5006, tmp_path)
    assert (first.name, second.name) == ("rasa-endpoints-5005.yml", "rasa-endpoints-5006.yml")
    assert sorted(tmp_path.iterdir()) == [first, second], "no partial file left behind"
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    text = first.read_text()
    assert 'url: "http://127.0.0.1:5055/webhook"' in text, "the action endpoint of endpoints.yml is kept"
    assert store_fields(text)["password"] == "pw" and store_fields(text)["record_exp"] == 60


def test_a_leftover_file_readable_by_others_becomes_private(tmp_path: Path) -> None:
    leftover = tmp_path / "rasa-endpoints-5005.yml"
    leftover.write_text("old")
    leftover.chmod(0o644)
    endpoints_for(settings(rasa_tracker_store_url="redis://:pw@localhost/5"), 5005, tmp_path)
    assert stat.S_IMODE(leftover.stat().st_mode) == 0o600


def test_the_port_comes_from_the_argument_then_rasa_port_then_rasa_url() -> None:
    url = "http://127.0.0.1:5015"
    assert replica_port(5006, {"RASA_PORT": "5007"}, url) == 5006
    assert replica_port(None, {"RASA_PORT": "5007"}, url) == 5007
    assert replica_port(None, {"RASA_PORT": ""}, url) == 5015
    assert replica_port(None, {}, "http://127.0.0.1") == 5005


def test_each_replica_runs_one_sanic_worker() -> None:
    assert RASA_ENV["SANIC_WORKERS"] == "1"
    assert rasa_environment({"SANIC_WORKERS": "4"})["SANIC_WORKERS"] == "1"


def test_tensorflow_runs_one_thread_per_pool_unless_the_operator_says_otherwise() -> None:
    assert rasa_environment({})["TF_INTER_OP_PARALLELISM_THREADS"] == "1"
    assert rasa_environment({})["TF_INTRA_OP_PARALLELISM_THREADS"] == "1"
    exported = rasa_environment({"TF_INTRA_OP_PARALLELISM_THREADS": "4"})
    assert exported["TF_INTRA_OP_PARALLELISM_THREADS"] == "4"


def test_replicas_starting_together_train_once_and_load_the_same_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BANSOS_MODEL_CACHE", str(tmp_path))
    trainings: list[float] = []

    def slow_ensure_model(quiet: bool = False) -> Path:
        target = tmp_path / "bansos-0123456789abcdef.tar.gz"
        if not target.exists():
            trainings.append(time.monotonic())
            time.sleep(0.3)
            target.write_text("model")
        return target

    monkeypatch.setattr(scripts.run_rasa, "ensure_model", slow_ensure_model)
    models: list[Path] = []
    replicas = [threading.Thread(target=lambda: models.append(shared_model())) for _ in range(2)]
    for replica in replicas:
        replica.start()
    for replica in replicas:
        replica.join(timeout=10)
    assert len(trainings) == 1
    assert len(models) == 2 and models[0] == models[1]


@pytest.mark.skipif(not RASA_PYTHON.exists(), reason="Rasa's virtual environment (.venv-rasa) is not installed")
def test_rasa_builds_the_redis_tracker_store_the_file_describes(tmp_path: Path) -> None:
    """Rasa's own reader: ${...} in a quoted password is not expanded, TLS and the prefix hold."""
    url = "rediss://:p%40ss%24%7BHOME%7D%22x@cache.example:6380/3"
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(endpoints_text(ENDPOINTS.read_text(), url, WEEK))
    probe = (
        "import json, sys\n"
        "from rasa.utils.endpoints import read_endpoint_config\n"
        "from rasa.core.tracker_store import RedisTrackerStore, create_tracker_store\n"
        "store = create_tracker_store(read_endpoint_config(sys.argv[1], 'tracker_store'))\n"
        "assert isinstance(store, RedisTrackerStore), type(store)\n"
        "pool = store.red.connection_pool\n"
        "kwargs = {k: pool.connection_kwargs[k] for k in ('host', 'port', 'db', 'password')}\n"
        "print(json.dumps({**kwargs, 'ssl': pool.connection_class.__name__ == 'SSLConnection',\n"
        "                  'prefix': store.key_prefix, 'expiry': store.record_exp}))\n"
    )
    result = subprocess.run(
        [str(RASA_PYTHON), "-W", "ignore", "-c", probe, str(endpoints)],
        capture_output=True, text=True, timeout=120, env={"RASA_TELEMETRY_ENABLED": "false"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "host": "cache.example", "port": 6380, "db": 3, "password": 'p@ss${HOME}"x',
        "ssl": True, "prefix": "bansos:tracker:", "expiry": WEEK,
    }


def test_the_action_server_may_listen_elsewhere_without_a_tracker_store(tmp_path: Path) -> None:
    path = endpoints_for(Settings(), 5105, tmp_path, action_url="http://127.0.0.1:6055/webhook")
    text = path.read_text()
    assert 'url: "http://127.0.0.1:6055/webhook"' in text and "5055" not in text
    assert "tracker_store" not in text
