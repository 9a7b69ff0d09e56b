"""Build hook: generate the gRPC stubs from protos/ before packaging (metadata lives in pyproject.toml).

Generation runs whenever setuptools loads this file (egg_info, editable and wheel builds alike), so a
fresh clone needs no separate step; grpcio-tools comes from [build-system] requires.
"""

import runpy
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
runpy.run_path(str(ROOT / "protos" / "generate.py"), run_name="generate")["generate"]()


def packages() -> list[str]:
    # services/ is `jenkins_assistant`; training-job/trainer is `jenkins_assistant.training`.
    found = ["jenkins_assistant", "jenkins_assistant.training"]
    found += [f"jenkins_assistant.{p}" for p in find_packages("services")]
    found += [f"jenkins_assistant.training.{p}" for p in find_packages("training-job/trainer")]
    return sorted(set(found))


setup(packages=packages())
