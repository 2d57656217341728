"""Packaging metadata (pyproject.toml): one version, the entry point, what a plain install brings.
The wheel itself is built, installed and run outside the checkout by tools/wheel_smoke.sh
(make smoke, run by CI)."""
import importlib.metadata as metadata
import os

import nas_hw

from tests.conftest import REPO


def test_one_version_source():
    text = open(os.path.join(REPO, "pyproject.toml")).read()
    assert 'dynamic = ["version"]' in text and 'version = {attr = "nas_hw.__version__"}' in text
    assert not os.path.exists(os.path.join(REPO, "setup.cfg"))  # no second copy of the metadata
    assert metadata.version("nas_hw") == nas_hw.__version__


def test_entry_point_and_dependencies_of_a_plain_install():
    dist = metadata.distribution("nas_hw")
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts == {"nas-hw": "nas_hw.app.cli:main"}
    plain = {r.split(";")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
             for r in dist.requires if "extra ==" not in r}
    # the chart, the TensorBoard files and the search spaces work without any extra
    assert {"matplotlib", "tensorboardx", "nnabla-nas", "nnabla", "hydra-core", "filelock"} <= plain
