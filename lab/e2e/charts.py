"""A local Helm chart repository on 127.0.0.1 serving the lab's stand-in charts (lab/charts/).

Helm reads `<repo>/index.yaml` (format: Helm's docs "The Chart Repository Guide", index file) and downloads the
`.tgz` its entry names; pulumi-kubernetes' `helm.v3.Release` does the same through the Helm library it embeds.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

CHARTS = Path(__file__).resolve().parent.parent / "charts"


def package(chart: Path, out: Path) -> tuple[dict[str, object], str]:
    """Write `<name>-<version>.tgz` (files under a `<name>/` folder, as `helm package` does); returns its metadata."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    filename = f"{meta['name']}-{meta['version']}.tgz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(chart.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=f"{meta['name']}/{path.relative_to(chart).as_posix()}")
    (out / filename).write_bytes(buffer.getvalue())
    return meta, filename


class ChartRepository:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        handler = partial(_QuietHandler, directory=str(self.directory))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        entries: dict[str, list[dict[str, object]]] = {}
        for chart in sorted(p for p in CHARTS.iterdir() if (p / "Chart.yaml").is_file()):
            meta, filename = package(chart, self.directory)
            digest = hashlib.sha256((self.directory / filename).read_bytes()).hexdigest()
            entry = {**meta, "urls": [f"{self.url}/{filename}"], "digest": digest, "created": "2026-01-01T00:00:00Z"}
            entries.setdefault(str(meta["name"]), []).append(entry)
        index = {"apiVersion": "v1", "entries": entries, "generated": "2026-01-01T00:00:00Z"}
        (self.directory / "index.yaml").write_text(yaml.safe_dump(index))
        threading.Thread(target=self._server.serve_forever, name="lab-charts", daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
