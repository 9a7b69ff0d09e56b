"""Build hook: generate the gRPC stubs from protos/ before packaging (metadata lives in pyproject.toml)."""

import runpy
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent


class BuildPyWithProtos(build_py):
    def run(self) -> None:
        runpy.run_path(str(ROOT / "protos" / "generate.py"), run_name="generate")["generate"]()
        super().run()


def packages() -> list[str]:
    # services/ is `jenkins_assistant`; training-job/trainer is `jenkins_assistant.training`.
    found = ["jenkins_assistant", "jenkins_assistant.v1", "jenkins_assistant.training"]
    found += [f"jenkins_assistant.{p}" for p in find_packages("services") if not p.startswith("v1")]
    found += [f"jenkins_assistant.training.{p}" for p in find_packages("training-job/trainer")]
    return sorted(set(found))


setup(cmdclass={"build_py": BuildPyWithProtos}, packages=packages())
