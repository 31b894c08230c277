"""The PDF: the report's HTML printed by headless Chromium.

Why Chromium: the PDF is the same HTML the browser shows, laid out by the same engine
(CSS grid, SVG images, ``@page`` and print media all as in the browser), and it is one Debian
package (``apt-get install chromium``) with no Python dependency. WeasyPrint would add a library
and its system libraries (Pango) and lays out CSS grid and SVG its own way, so the PDF would
drift from the page people see.

The page is written to a private temporary folder and printed from a ``file://`` URL with a
throw-away profile; networking extras are switched off and the page's Content-Security-Policy
forbids any fetch, so printing never reaches the network. ``--no-sandbox`` is passed only when
running as root (Chromium refuses to start as root otherwise); the page has no script.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from metrics.errors import ChatlensError

#: Executables tried in this order (``CHATLENS_CHROMIUM`` first when set).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PDF_TIMEOUT_SECONDS = 120.0


class PdfRendererMissing(ChatlensError):
    """No Chromium to print the PDF with."""


class PdfRenderError(ChatlensError):
    """Chromium ran but did not write the PDF."""


def find_chromium() -> str | None:
    """The Chromium executable: ``CHATLENS_CHROMIUM`` (a path or a name), else the first of
    :data:`CHROMIUM_NAMES` on the PATH, else None."""
    env = os.environ.get("CHATLENS_CHROMIUM", "").strip()
    for name in ((env,) if env else ()) + CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def html_to_pdf(html: str, out_path, *, chromium: str | None = None,
                timeout: float = PDF_TIMEOUT_SECONDS) -> Path:
    """Print ``html`` to ``out_path`` (A4, the page's own margins, no header or footer).

    Raises :class:`PdfRendererMissing` when no Chromium is found ("install chromium or use
    --format html") and :class:`PdfRenderError` when it fails or times out.
    """
    exe = chromium or find_chromium()
    if not exe:
        raise PdfRendererMissing("--format pdf prints the HTML report with Chromium, which is not installed: "
                                 "install chromium (apt-get install chromium) or use --format html")
    out_path = Path(out_path).resolve()
    with tempfile.TemporaryDirectory(prefix="chatlens-pdf-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        target = Path(tmp) / "report.pdf"
        cmd = [exe, "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--disable-extensions", "--no-first-run", "--no-default-browser-check",
               "--mute-audio", f"--user-data-dir={Path(tmp) / 'profile'}", "--no-pdf-header-footer",
               f"--print-to-pdf={target}", page.as_uri()]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.insert(1, "--no-sandbox")
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        except OSError as exc:
            raise PdfRendererMissing(f"cannot start {exe}: {exc}; install chromium or use --format html") from None
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the renderer children go too
            proc.communicate()
            raise PdfRenderError(f"chromium did not print the PDF within {timeout:g} s") from None
        if not target.exists() or target.stat().st_size == 0:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise PdfRenderError(f"chromium did not write the PDF (exit {proc.returncode}): {' | '.join(tail)}")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(target), out_path)
    return out_path
