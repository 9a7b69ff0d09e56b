"""Generate the Python gRPC stubs (and mypy stubs) from protos/ into services/v1/.

The generated package is importable as ``jenkins_assistant.v1`` (``services/`` is the
``jenkins_assistant`` package). Generated files are build output: never edit or commit them.

    python protos/generate.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PROTO_ROOT.parent
PACKAGE_DIR = REPO_ROOT / "services"
VERSIONS = ("v1",)


def generate() -> list[Path]:
    from grpc_tools import protoc
    import grpc_tools

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    written: list[Path] = []
    for version in VERSIONS:
        protos = sorted((PROTO_ROOT / "jenkins_assistant" / version).glob("*.proto"))
        if not protos:
            raise SystemExit(f"no .proto files under protos/jenkins_assistant/{version}")
        with tempfile.TemporaryDirectory() as tmp:
            args = [
                "protoc",
                f"-I{PROTO_ROOT}",
                f"-I{well_known}",
                f"--python_out={tmp}",
                f"--grpc_python_out={tmp}",
            ]
            # mypy stubs are optional at build time (mypy-protobuf is a dev extra).
            mypy_plugin = shutil.which("protoc-gen-mypy") or shutil.which(
                "protoc-gen-mypy", path=str(Path(sys.executable).parent)
            )
            if mypy_plugin:
                args += [
                    f"--plugin=protoc-gen-mypy={mypy_plugin}",
                    f"--plugin=protoc-gen-mypy_grpc={Path(mypy_plugin).with_name('protoc-gen-mypy_grpc')}",
                    f"--mypy_out={tmp}",
                    f"--mypy_grpc_out={tmp}",
                ]
            args += [str(p.relative_to(PROTO_ROOT)) for p in protos]
            code = protoc.main(args)
            if code != 0:
                raise SystemExit(f"protoc failed with exit code {code}")
            generated = Path(tmp) / "jenkins_assistant" / version
            target = PACKAGE_DIR / version
            # Write to a sibling folder, then swap, so a concurrent import never sees half a package.
            staging = PACKAGE_DIR / f".{version}.staging"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(generated, staging)
            (staging / "__init__.py").write_text(
                '"""Generated from protos/jenkins_assistant/' + version + ' by protos/generate.py. Do not edit."""\n'
            )
            (staging / "py.typed").write_text("")
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
            written += sorted(target.iterdir())
    return written


if __name__ == "__main__":
    files = generate()
    print(f"generated {len(files)} files into {PACKAGE_DIR.relative_to(REPO_ROOT)}/", file=sys.stderr)
