"""Check GPU sampling on a real NVIDIA GPU: train a small PyTorch model on CUDA
under the workbench and verify that the run recorded GPU samples.

    python scripts/gpu_check.py [--seconds 20]

Needs torch with CUDA and an NVIDIA driver. Exits 0 when the run has GPU
samples with utilization or memory above zero, 1 when it has none, 2 when no
GPU is usable here. Uses a temporary WORKBENCH_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

TRAIN = """\
import time
import torch
import workbench as wb

seconds = float(wb.params().get("seconds", 20))
device = torch.device("cuda")
print("training on", torch.cuda.get_device_name(0), flush=True)
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Linear(1024, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 4096), torch.nn.ReLU(),
    torch.nn.Linear(4096, 10)).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(8192, 1024, device=device)
y = torch.randint(0, 10, (8192,), device=device)
step, end = 0, time.time() + seconds
while time.time() < end:
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    step += 1
    if step % 50 == 0:
        torch.cuda.synchronize()
        wb.log_metric("loss", loss.item(), step=step)
print("steps", step, flush=True)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    problem = _gpu_problem()
    if problem:
        print(f"gpu_check: no usable GPU: {problem}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = dict(os.environ, WORKBENCH_HOME=str(root / "home"))
        project = root / "gpu-project"
        (project / "data").mkdir(parents=True)
        (project / "data" / "train.csv").write_text("x,y\n1,0\n")
        (project / "train.py").write_text(TRAIN)
        (project / "workbench.toml").write_text(
            textwrap.dedent(f"""\
            [project]
            name = "gpu-check"
            [data]
            train = "data/train.csv"
            target = "y"
            [train]
            trainer = "script"
            script = "train.py"
            params = {{ seconds = {args.seconds} }}
            """)
        )
        cli = [sys.executable, "-m", "workbench"]
        subprocess.run([*cli, "project", "add", str(project)], env=env, check=True)
        started = subprocess.run(
            [*cli, "run", "start", "gpu-check", "--wait", "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        info = json.loads(started.stdout)
        logs = subprocess.run(
            [*cli, "run", "logs", str(info["id"])], env=env, capture_output=True, text=True
        ).stdout
        print(logs)
        print(json.dumps({k: info[k] for k in ("id", "status", "exit_code")}, indent=2))
        print(
            json.dumps(
                {"resources": info["resources"], "gpus": info["environment"]["gpus"]}, indent=2
            )
        )
        if info["status"] != "succeeded":
            print("gpu_check: the training run did not succeed", file=sys.stderr)
            return 1
        gpu = info["resources"]["gpu"] or []
        busy = [
            d for d in gpu if (d["utilization_max"] or 0) > 0 or (d["memory_used_max"] or 0) > 0
        ]
        if not busy:
            print("gpu_check: the run recorded no GPU utilization or memory", file=sys.stderr)
            return 1
        for device in busy:
            print(
                f"gpu_check: GPU {device['index']}: utilization max {device['utilization_max']}%,"
                f" memory max {device['memory_used_max']} B, attribution {device['attribution']},"
                f" run's memory max {device['process_memory_max']} B"
            )
        print("gpu_check: OK")
        return 0


def _gpu_problem() -> str | None:
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed (pip install torch)"
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False (no NVIDIA GPU or driver)"
    from workbench.core.gpu import GpuMonitor

    monitor = GpuMonitor()
    if not monitor.available:
        return f"NVML: {monitor.reason}"
    monitor.close()
    return None


if __name__ == "__main__":
    sys.exit(main())
