"""setup.sh installs the grader into its own virtual environment and leaves python3 alone."""
import os
import subprocess

from conftest import ROOT


def system_packages():
    return subprocess.run(["python3", "-m", "pip", "list", "--format=freeze"], capture_output=True,
                          text=True, check=True).stdout


def test_setup_sh_builds_its_own_venv(tmp_path):
    before = system_packages()
    env = {**os.environ, "AUTOGRADER_ROOT": str(tmp_path)}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(["bash", str(ROOT / "setup.sh")], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    venv_python = tmp_path / "venv" / "bin" / "python"
    listed = subprocess.run([str(venv_python), "-m", "autograder", "list"], capture_output=True, text=True, check=True)
    assert "ift6135_vit_lstm" in listed.stdout.split()
    assert system_packages() == before
