"""Headless Chromium for looking at reports: screenshots, and what is visible where.

Chromium runs with the flags a closed network and root need (no sandbox, no background
networking, a fresh profile). Visibility is measured in the browser itself: a probe page
served next to the report on 127.0.0.1 loads it in a frame of the first screen's size and
writes, for each selector, whether the element is displayed and where, into its own DOM,
which ``--dump-dom`` prints.
"""

import functools
import html
import http.server
import json
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from harness.proc import run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MISSING = (
    "headless Chromium is not installed (Debian: apt-get install -y chromium); "
    "CI installs it in .ci/run"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)

PROBE = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="report.html" style="width:%(w)dpx;height:%(h)dpx;border:0"></iframe>
<pre id="result">pending</pre>
<script>
const SELECTORS = %(selectors)s;
document.getElementById("f").addEventListener("load", () => {
  setTimeout(() => {
    const frame = document.getElementById("f");
    const doc = frame.contentDocument, win = frame.contentWindow;
    const out = {viewport: {width: win.innerWidth, height: win.innerHeight}, elements: {}};
    for (const sel of SELECTORS) {
      const el = doc.querySelector(sel);
      if (!el) { out.elements[sel] = null; continue; }
      const box = el.getBoundingClientRect();
      let shown = box.width > 0 && box.height > 0;
      for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
        const style = win.getComputedStyle(node);
        if (style.display === "none" || style.visibility === "hidden" || style.opacity === "0") {
          shown = false;
        }
      }
      out.elements[sel] = {shown: shown, top: box.top, bottom: box.bottom,
                           text: (el.innerText || el.textContent || "").slice(0, 5000)};
    }
    document.getElementById("result").textContent = JSON.stringify(out);
  }, 300);
});
</script></body></html>"""


@contextmanager
def _serving(directory):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


def _chromium(*args, profile):
    return run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        timeout=120,
        env={"HOME": str(profile)},
    )


def visible(report, selectors, *, width=1280, height=900):
    """Where each selector's element is on the report's first screen, as Chromium lays it out.

    Returns:
        ``{"viewport": {...}, "elements": {selector: None | {"shown", "top", "bottom",
        "text"}}}``.

    """
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp, "site")
        site.mkdir()
        shutil.copy(report, site / "report.html")
        probe = PROBE % {"w": width, "h": height, "selectors": json.dumps(list(selectors))}
        (site / "probe.html").write_text(probe, encoding="utf-8")
        with _serving(site) as base:
            done = _chromium(
                "--virtual-time-budget=15000",
                "--dump-dom",
                f"{base}/probe.html",
                profile=Path(tmp, "profile"),
            )
    start = done.stdout.index('<pre id="result">') + len('<pre id="result">')
    text = done.stdout[start : done.stdout.index("</pre>", start)]
    return json.loads(html.unescape(text))


def screenshot(report, png, *, width=1280, height=900):
    """Save a PNG of the report's first ``height`` pixels at ``width``."""
    with tempfile.TemporaryDirectory() as tmp:
        _chromium(
            f"--window-size={width},{height}",
            "--virtual-time-budget=10000",
            f"--screenshot={png}",
            Path(report).resolve().as_uri(),
            profile=Path(tmp, "profile"),
        )
    return Path(png)
