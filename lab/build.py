"""Build the lab's counterparts once, into a cache outside the clone: `python -m lab.build [NAME ...]`.

Each counterpart is built from the Go module proxy by a small module of our own under `lab/build/<name>/` (or
`lab/standins/<name>/` for a stand-in) and lands in `<cache>/bin/<key>/`, where the key is the counterpart's
name, version and a hash of its recipe: a second run with the same recipe builds nothing, and a changed recipe
builds anew beside the old one. The cache is `$FLYWHEEL_LAB_CACHE` or `~/.cache/flywheel-lab`; Go's module and
build caches live there too, so a cold machine downloads and compiles once.

`python -m lab.build --path` prints the PATH entries (one per line) the e2e suite puts first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LAB = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("FLYWHEEL_LAB_CACHE", Path.home() / ".cache" / "flywheel-lab"))
GOMODCACHE = CACHE / "gomod"

PULUMI_VERSION = "3.274.1"
PULUMI_KUBERNETES_PSEUDO = "v4.0.0-20260115033456-f47bc2d6f199"
KUBERNETES_VERSION = "1.36.1"
KUBERNETES_PROVIDER_VERSION_VAR = "github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version"


def go_env() -> dict[str, str]:
    return {
        **os.environ,
        "GOMODCACHE": str(GOMODCACHE),
        "GOCACHE": str(CACHE / "gobuild"),
        "GOFLAGS": "-modcacherw",
        "GOTOOLCHAIN": "local",
    }


def module_dir(module: str, version: str) -> Path:
    """Where `go mod download` put a module (the cache escapes upper-case letters as !x)."""
    escaped = "".join(f"!{c.lower()}" if c.isupper() else c for c in module)
    return GOMODCACHE / f"{escaped}@{version}"


def download(module: str, version: str, workdir: Path) -> Path:
    subprocess.run(["go", "mod", "download", f"{module}@{version}"], cwd=workdir, env=go_env(), check=True)
    return module_dir(module, version)


def kubernetes_schema(src: Path) -> None:
    """What the provider's own `go generate` does (cmd/pulumi-resource-kubernetes/generate.go): the schema with its
    version set, and the terraform mapping, minified beside main.go for go:embed."""
    provider = download("github.com/pulumi/pulumi-kubernetes/provider/v4", PULUMI_KUBERNETES_PSEUDO, src)
    schema = json.loads((provider / "cmd/pulumi-resource-kubernetes/schema.json").read_text())
    schema["version"] = kubernetes_provider_version()
    (src / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
    mapping = json.loads((provider / "cmd/pulumi-resource-kubernetes/terraform-mapping.json").read_text())
    (src / "terraform-mapping-embed.json").write_text(json.dumps(mapping, separators=(",", ":")))


def kubernetes_provider_version() -> str:
    """The provider reports its commit's pseudo-version: it is not the 4.34.2 release the Python SDK pins."""
    return PULUMI_KUBERNETES_PSEUDO.removeprefix("v")


def language_host_files(src: Path, out: Path) -> None:
    """The real host runs programs through the SDK's pulumi-language-python-exec shim found next to its binary, and
    the CLI finds the dynamic-provider launcher on PATH: both ship in the sdk/v3 module at the CLI's version."""
    sdk = download("github.com/pulumi/pulumi/sdk/v3", f"v{PULUMI_VERSION}", src)
    for name, relative in {
        "pulumi-language-python-exec": "python/cmd/pulumi-language-python-exec",
        "pulumi-resource-pulumi-python": "python/dist/pulumi-resource-pulumi-python",
    }.items():
        shutil.copyfile(sdk / relative, out / name)
        (out / name).chmod(0o755)


@dataclass(frozen=True)
class Counterpart:
    name: str
    version: str
    kind: str  # "real" or "stand-in"
    recipe: str  # folder under lab/
    binaries: dict[str, str]  # binary name -> Go package path (relative packages start with ".")
    ldflags: tuple[str, ...] = ()
    prepare: Callable[[Path], None] | None = None
    install_extra: Callable[[Path, Path], None] | None = None
    what: str = ""
    extra_inputs: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        digest = hashlib.sha256()
        for path in sorted((LAB / self.recipe).rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(LAB).as_posix().encode() + b"\0" + path.read_bytes())
        digest.update(repr((self.version, self.binaries, self.ldflags, self.extra_inputs)).encode())
        return f"{self.name}-{self.version}-{digest.hexdigest()[:12]}"

    @property
    def bin_dir(self) -> Path:
        return CACHE / "bin" / self.key

    def built(self) -> bool:
        return (self.bin_dir / ".complete").is_file()


def _k8s_ldflags() -> tuple[str, ...]:
    major, minor, _ = KUBERNETES_VERSION.split(".")
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.gitVersion=v{KUBERNETES_VERSION}", f"-X {pkg}.gitMajor={major}"]
        flags += [f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean"]
    return tuple(flags)


COUNTERPARTS: tuple[Counterpart, ...] = (
    Counterpart(
        name="pulumi",
        version=PULUMI_VERSION,
        kind="real",
        recipe="build/pulumi",
        binaries={"pulumi": "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"},
        ldflags=(f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{PULUMI_VERSION}",),
        what="Pulumi CLI and engine (pkg/v3/cmd/pulumi)",
    ),
    Counterpart(
        name="pulumi-language-python",
        version=PULUMI_VERSION,
        kind="stand-in",
        recipe="standins/pulumi-language-python",
        binaries={"pulumi-language-python": "."},
        ldflags=(f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{PULUMI_VERSION}",),
        install_extra=language_host_files,
        what="Python language host (module refused by the proxy); runs the SDK's real exec shim and toolchain",
    ),
    Counterpart(
        name="pulumi-kubernetes",
        version=kubernetes_provider_version(),
        kind="real",
        recipe="build/pulumi-kubernetes",
        binaries={"pulumi-resource-kubernetes": "."},
        ldflags=(f"-X {KUBERNETES_PROVIDER_VERSION_VAR}={kubernetes_provider_version()}",),
        prepare=kubernetes_schema,
        what="pulumi-kubernetes provider (provider/v4 at the only commit the proxy serves)",
    ),
    Counterpart(
        name="kubernetes",
        version=KUBERNETES_VERSION,
        kind="real",
        recipe="build/kubernetes",
        binaries={
            "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
            "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
            "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
        },
        ldflags=_k8s_ldflags(),
        what="kube-apiserver, kube-controller-manager, kube-scheduler (kubectl is not built: no test runs it)",
    ),
    Counterpart(
        name="etcd",
        version="3.6.16",
        kind="real",
        recipe="build/etcd",
        binaries={"etcd": "."},
        what="etcd server (server/v3 etcdmain)",
    ),
    Counterpart(
        name="kwok",
        version="0.8.0",
        kind="real",
        recipe="build/kwok",
        binaries={"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
        ldflags=("-X sigs.k8s.io/kwok/pkg/consts.Version=v0.8.0",),
        what="kwok: fake nodes; pods become Ready and Job pods complete without a kubelet",
    ),
    Counterpart(
        name="bazel-remote",
        # the image pin's v2.4.4 is listed by the proxy but its module zip is refused (403): pin and lab use v2.6.1
        version="2.6.1",
        kind="real",
        recipe="build/bazel-remote",
        binaries={"bazel-remote": "github.com/buchgr/bazel-remote/v2"},
        what="bazel-remote cache server (the workload lab runs it with its S3 tier on SeaweedFS)",
    ),
)


def by_name(name: str) -> Counterpart:
    for counterpart in COUNTERPARTS:
        if counterpart.name == name:
            return counterpart
    raise SystemExit(f"lab.build: no counterpart {name!r} (known: {', '.join(c.name for c in COUNTERPARTS)})")


def build(counterpart: Counterpart) -> float:
    """Build one counterpart unless its key is already built; returns the seconds spent (0 when cached)."""
    if counterpart.built():
        return 0.0
    started = time.monotonic()
    src = CACHE / "src" / counterpart.key
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(LAB / counterpart.recipe, src)
    if counterpart.prepare:
        counterpart.prepare(src)
    staging = counterpart.bin_dir.with_name(counterpart.bin_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for binary, package in counterpart.binaries.items():
        command = ["go", "build", "-trimpath", "-ldflags", " ".join(("-s", "-w", *counterpart.ldflags))]
        print(f"lab.build: {counterpart.name}: go build {package} -> {binary}", file=sys.stderr, flush=True)
        subprocess.run([*command, "-o", str(staging / binary), package], cwd=src, env=go_env(), check=True)
    if counterpart.install_extra:
        counterpart.install_extra(src, staging)
    seconds = time.monotonic() - started
    (staging / ".complete").write_text(json.dumps({"seconds": round(seconds, 1), "key": counterpart.key}) + "\n")
    shutil.rmtree(counterpart.bin_dir, ignore_errors=True)
    staging.rename(counterpart.bin_dir)
    return seconds


def path_entries(names: list[str] | None = None) -> list[Path]:
    chosen = [by_name(n) for n in names] if names else list(COUNTERPARTS)
    missing = [c.name for c in chosen if not c.built()]
    if missing:
        raise SystemExit(f"lab.build: not built yet: {', '.join(missing)} (run `python -m lab.build`)")
    return [c.bin_dir for c in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.build", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="counterparts to build (default: all)")
    parser.add_argument("--path", action="store_true", help="print the PATH entries of built counterparts")
    args = parser.parse_args(argv)
    if args.path:
        print("\n".join(str(p) for p in path_entries(args.names or None)))
        return 0
    total = 0.0
    for counterpart in [by_name(n) for n in args.names] if args.names else COUNTERPARTS:
        seconds = build(counterpart)
        total += seconds
        state = f"built in {seconds:.0f} s" if seconds else "cached"
        print(f"lab.build: {counterpart.name} {counterpart.version} ({counterpart.kind}): {state}", flush=True)
    print(f"lab.build: total {total:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
