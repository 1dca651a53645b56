"""Train the Rasa model only when its inputs changed, caching it outside git.

The cache key is a hash of config.yml, domain.yml, everything under nlu/, the custom
components in nlu_components/ and the Rasa lock file, so `make run`, `make test` and CI
all reuse one trained model until the assistant itself changes. Run with the app's
Python; Rasa is called as a subprocess.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"
INPUTS = ["config.yml", "domain.yml", "requirements-rasa.lock"]


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "asisten-bansos" / "models"
    return Path(os.environ.get("BANSOS_MODEL_CACHE", default))


def inputs_hash(root: Path = ROOT, config: Path | None = None) -> str:
    digest = hashlib.sha256()
    files = [root / name for name in INPUTS] + sorted((root / "nlu").rglob("*.yml"))
    # Custom NLU components named in config.yml.
    files += sorted((root / "nlu_components").glob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        # Another pipeline's model (the benchmark's baseline) is keyed by its own config.
        digest.update((config or path).read_bytes() if path.name == "config.yml" else path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_model(root: Path = ROOT, quiet: bool = False, config: Path | None = None) -> Path:
    """Path of the trained model for the current inputs, training it if not cached.

    `config` trains the same assistant with another pipeline and policies (the
    benchmark's baseline, scripts/bench_turn.py) instead of config.yml.
    """
    target = cache_dir() / f"bansos-{inputs_hash(root, config)}.tar.gz"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as out:
        command = [
            str(RASA), "train", "--data", "nlu", "--domain", "domain.yml",
            "--config", str(config or "config.yml"), "--out", out, "--fixed-model-name", "model",
        ]
        output = None if not quiet else subprocess.DEVNULL
        subprocess.run(command, cwd=root, check=True, stdout=output, stderr=output)
        tmp_target = target.with_suffix(".partial")
        shutil.copyfile(Path(out) / "model.tar.gz", tmp_target)
        tmp_target.replace(target)
    print(f"trained {target.name} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quiet", action="store_true", help="hide Rasa's training output")
    args = parser.parse_args()
    print(ensure_model(quiet=args.quiet))


if __name__ == "__main__":
    main()
