"""The wheel maps models/ and datasets/ to bench.models / bench.datasets and ships no top-level `datasets`."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_mapped_packages_only(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), "-q"], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("credit_seq_bench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "bench/models/classic.py" in names
    assert "bench/datasets/__init__.py" in names
    assert "bench/protocols/paper-v1.toml" in names
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"bench"}, tops
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "bench = bench.cli:app" in zipfile.ZipFile(wheel).read(entry).decode()


def test_installed_package_imports_models_and_datasets_from_elsewhere(tmp_path):
    code = ("import bench.models, bench.datasets, bench.registry as r; "
            "print(sorted(e.key for e in r.entries()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "'dt'" in out.stdout and "'emdlot'" in out.stdout
