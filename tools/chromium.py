"""Headless Chromium over the DevTools protocol, for the book's PDF and browser checks.

Debian's ``chromium`` package is the browser (no downloaded browser, no
selenium/playwright): :func:`find_chromium` locates it and, when running as root
on a Debian-like system, installs it with ``apt-get``. :class:`Browser` starts it
headless with a private profile and talks to it over one websocket
(``websocket-client``, already a Jupyter dependency), one flattened session per
page.

Usage::

    with Browser() as browser:
        page = browser.open("http://127.0.0.1:8000/book/intro.html")
        page.wait_for_mathjax()
        page.screenshot("intro.png")
        print(page.console_errors())
        page.close()
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import websocket

#: Flags for a quiet, reproducible, offline headless browser.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # root in containers has no user namespaces for the sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
    "--font-render-hinting=none",
)

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "apt-get update && apt-get install -y chromium"


#: Page.prose_blocks: text nodes outside code and typeset math, grouped by their block element.
_PROSE_BLOCKS_JS = r"""
(() => {
  const skipTags = new Set(['PRE', 'CODE', 'SCRIPT', 'STYLE', 'TEXTAREA', 'MJX-CONTAINER', 'KBD', 'SAMP',
                            'SVG', 'NOSCRIPT', 'TEMPLATE']);
  const skipClasses = ['highlight', 'headerlink'];
  const blockSelector = 'p, li, td, th, dt, dd, h1, h2, h3, h4, h5, h6, caption, figcaption, summary, button, '
                      + 'label, div, section, nav, article, aside, header, footer';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      for (let el = node.parentElement; el; el = el.parentElement) {
        if (skipTags.has(el.tagName.toUpperCase()) || skipClasses.some(c => el.classList.contains(c)))
          return NodeFilter.FILTER_REJECT;
      }
      return node.textContent.trim() ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT;
    }
  });
  const blocks = new Map();
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const block = node.parentElement.closest(blockSelector) || document.body;
    if (!blocks.has(block)) blocks.set(block, []);
    blocks.get(block).push(node.textContent);
  }
  return Array.from(blocks, ([block, parts]) => {
    const section = block.closest('section[id]');
    return {section: section ? section.id : '', text: parts.join('').replace(/\s+/g, ' ').trim()};
  });
})()
"""


class ChromiumError(RuntimeError):
    """Chromium is missing, did not start, or a DevTools call failed."""


def find_chromium(*, install: bool = True) -> str:
    """Path of a Chromium executable; installs Debian's package if allowed.

    ``$CHROMIUM`` wins if set. Otherwise the usual names are looked up on PATH.
    When none is found, ``install`` is true, we are root and ``apt-get`` exists,
    ``apt-get install -y chromium`` is run; anything else raises
    :class:`ChromiumError` with the command to run.
    """
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        if shutil.which(explicit):
            return shutil.which(explicit)
        raise ChromiumError(f"$CHROMIUM={explicit!r} is not an executable")
    for name in _CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    if install and can_install_debian_packages():
        install_debian_package("chromium")
        path = shutil.which("chromium")
        if path:
            return path
    raise ChromiumError(
        "Chromium is needed for the book's PDF and browser checks but was not found. "
        f"Install it (Debian/Ubuntu, as root): {INSTALL_HINT}  -- or set $CHROMIUM."
    )


def can_install_debian_packages() -> bool:
    """Root on a system with apt-get."""
    return bool(shutil.which("apt-get")) and hasattr(os, "geteuid") and os.geteuid() == 0


def install_debian_package(package: str) -> None:
    """``apt-get update && apt-get install -y <package>`` (root only), or a clear error."""
    if not can_install_debian_packages():
        raise ChromiumError(f"{package} is missing; install it (as root): "
                            f"apt-get update && apt-get install -y {package}")
    apt = shutil.which("apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in ([apt, "update"], [apt, "install", "-y", package]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ChromiumError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")


class Browser:
    """A headless Chromium driven over the DevTools protocol (context manager)."""

    def __init__(self, executable: str | None = None, *, width: int = 1280, height: int = 900,
                 timeout: float = 60.0):
        self.executable = executable or find_chromium()
        self.width, self.height, self.timeout = width, height, timeout
        self._profile = None
        self._proc = None
        self._ws = None
        self._next_id = 0
        self._events: list[dict] = []

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> "Browser":
        self._profile = tempfile.mkdtemp(prefix="book-chromium-")
        port_file = Path(self._profile) / "DevToolsActivePort"
        args = [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}",
                "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
                f"--window-size={self.width},{self.height}", "about:blank"]
        self._log = open(Path(self._profile) / "chromium.log", "wb")
        self._proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.timeout
        while not port_file.is_file() or len(port_file.read_text().split()) < 2:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log = (Path(self._profile) / "chromium.log").read_text(errors="replace")
                self.__exit__(None, None, None)
                raise ChromiumError(f"Chromium did not start:\n{log[-3000:]}")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        self._ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}{path}", timeout=self.timeout, suppress_origin=True,
            enable_multithread=False,
        )
        return self

    def __exit__(self, *exc) -> None:
        if self._ws is not None:
            try:
                self.call("Browser.close", timeout=5)
            except Exception:  # noqa: BLE001 - closing a dying browser
                pass
            self._ws.close()
            self._ws = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if getattr(self, "_log", None):
            self._log.close()
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    # -- protocol ----------------------------------------------------------

    def call(self, method: str, params: dict | None = None, *, session: str | None = None,
             timeout: float | None = None) -> dict:
        """Send one command and return its result (events are queued meanwhile)."""
        self._next_id += 1
        msg_id = self._next_id
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._ws.send(json.dumps(msg))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            data = self._receive(deadline, what=method)
            if data.get("id") == msg_id:
                if "error" in data:
                    raise ChromiumError(f"{method}: {data['error'].get('message')} {data['error'].get('data', '')}")
                return data.get("result", {})
            self._events.append(data)

    def _receive(self, deadline: float, *, what: str) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ChromiumError(f"timed out waiting for {what}")
        self._ws.settimeout(remaining)
        try:
            return json.loads(self._ws.recv())
        except websocket.WebSocketTimeoutException as err:
            raise ChromiumError(f"timed out waiting for {what}") from err

    def wait_event(self, method: str, *, session: str, timeout: float | None = None) -> dict:
        """The first queued-or-future event ``method`` of ``session``."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = 0
        while True:
            for event in self._events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            seen = len(self._events)
            self._events.append(self._receive(deadline, what=method))

    def pump(self, seconds: float) -> None:
        """Queue the events that arrive within ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self._events.append(self._receive(deadline, what="events"))
            except ChromiumError:
                return

    def events(self, session: str) -> list[dict]:
        return [e for e in self._events if e.get("sessionId") == session]

    # -- pages -------------------------------------------------------------

    def open(self, url: str, *, timeout: float | None = None) -> "Page":
        """A new tab that has loaded ``url`` (load event fired)."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
                  session=session)
        page.goto(url, timeout=timeout)
        return page


class Page:
    """One tab (a flattened DevTools session) of a :class:`Browser`."""

    def __init__(self, browser: Browser, target: str, session: str):
        self.browser, self.target, self.session = browser, target, session

    def call(self, method: str, params: dict | None = None, **kw) -> dict:
        return self.browser.call(method, params, session=self.session, **kw)

    def goto(self, url: str, *, timeout: float | None = None) -> None:
        before = len(self.browser._events)
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise ChromiumError(f"navigating to {url}: {result['errorText']}")
        # the load event of this navigation (not an earlier one)
        deadline = time.monotonic() + (timeout or self.browser.timeout)
        while True:
            for event in self.browser._events[before:]:
                if event.get("method") == "Page.loadEventFired" and event.get("sessionId") == self.session:
                    return
            before = len(self.browser._events)
            self.browser._events.append(self.browser._receive(deadline, what=f"load of {url}"))

    def evaluate(self, expression: str, *, await_promise: bool = False, timeout: float | None = None):
        """Evaluate JavaScript in the page and return its JSON value."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": await_promise}, timeout=timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ChromiumError(f"JavaScript error: {text}")
        return result["result"].get("value")

    def wait_until(self, expression: str, *, timeout: float = 30.0, interval: float = 0.1):
        """Poll ``expression`` until it is truthy; returns its value (or raises)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise ChromiumError(f"timed out waiting for: {expression}")
            self.browser.pump(interval)

    def wait_for_mathjax(self, *, timeout: float = 60.0) -> None:
        """Wait until MathJax (if the page loads it) has typeset everything."""
        self.evaluate(
            "(async () => {"
            "  if (!document.querySelector('script[src*=\"mathjax\"]')) return true;"
            "  for (let i = 0; i < 600 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)"
            "    await new Promise(r => setTimeout(r, 50));"
            "  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;"
            "  return true; })()",
            await_promise=True, timeout=timeout,
        )

    def wait_for_images(self, *, timeout: float = 30.0) -> None:
        """Load every image now (lazy ones included) and wait for each to settle."""
        self.evaluate(
            "Promise.all(Array.from(document.images).map(img => {"
            "  img.loading = 'eager';"
            "  if (img.complete) return true;"
            "  return new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); });"
            "}))",
            await_promise=True, timeout=timeout,
        )

    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads seen by this tab."""
        errors = []
        for event in self.browser.events(self.session):
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                args = params.get("args", [])
                errors.append("console.error: " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in args))
            elif method == "Runtime.exceptionThrown":
                d = params.get("exceptionDetails", {})
                errors.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                errors.append(f"network: {params.get('errorText')} (request {params.get('requestId')})")
        return errors

    def prose_blocks(self) -> list[dict]:
        """The rendered text a reader sees, outside code and typeset math, one entry per block.

        Each entry is ``{"section": id of the enclosing section (or ""), "text": ...}``:
        the text nodes of one block element (paragraph, list item, table cell,
        heading, ...) joined, skipping code (``pre``, ``code``, highlighted blocks),
        MathJax's output, scripts and styles, and the headings' ``#`` permalinks.
        Math that MathJax did not typeset stays in, as the raw TeX the reader sees.
        Call after :meth:`wait_for_mathjax`.
        """
        return self.evaluate(_PROSE_BLOCKS_JS)

    def requested_urls(self) -> list[str]:
        """Every URL this tab requested (to prove the page needs no network)."""
        return [e["params"]["request"]["url"] for e in self.browser.events(self.session)
                if e.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path, *, full_page: bool = False, max_height: int = 8000) -> Path:
        """Save a PNG of the viewport, or of the whole page up to ``max_height`` px."""
        width, height = self.browser.width, self.browser.height
        if full_page:
            page_height = int(self.evaluate("document.documentElement.scrollHeight"))
            self._resize(width, max(height, min(page_height, max_height)))
        try:
            data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        finally:
            if full_page:
                self._resize(width, height)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def _resize(self, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))",
                      await_promise=True)

    def print_pdf(self, path, **options) -> Path:
        """Print the page to PDF (Chromium's print engine, CSS @page honoured)."""
        params = {"printBackground": True, "preferCSSPageSize": True, "transferMode": "ReturnAsStream"}
        params.update(options)
        try:
            result = self.call("Page.printToPDF", params, timeout=600)
        except ChromiumError as err:
            if "generateDocumentOutline" not in params or "Invalid" not in str(err):
                raise
            params.pop("generateDocumentOutline")
            result = self.call("Page.printToPDF", params, timeout=600)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            stream = result["stream"]
            while True:
                chunk = self.call("IO.read", {"handle": stream, "size": 1 << 20})
                data = chunk.get("data", "")
                out.write(base64.b64decode(data) if chunk.get("base64Encoded") else data.encode())
                if chunk.get("eof"):
                    break
            self.call("IO.close", {"handle": stream})
        return path

    def close(self) -> None:
        self.browser.call("Target.closeTarget", {"targetId": self.target})
