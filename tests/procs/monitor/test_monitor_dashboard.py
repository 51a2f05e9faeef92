"""The dashboard of a real running stack (simulator, bridge, executor, monitor) in Debian's headless chromium
driven by Selenium through chromium-driver: banner, bridge READY, a fill made during the test appearing
without a reload, STALLED after `bin/gateway-sim-ctl silent on`. Then the token: a monitor bound to
127.0.0.2 (loopback, but not 127.0.0.1) answers 401 to every path without it, and refuses to start (78)
when no token is set. The set-up installs chromium and chromium-driver with apt-get when they are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By

from shared.bus import req_endpoint, request_once
from shared.messages import PlaceOrder
from tests.support.sim import free_port
from tests.support.stack import REPO, Stack, running_stack, wait_for

PROGRAMS = ("gateway_sim", "bridge", "executor", "monitor")


def _browser_tools() -> tuple[str, str]:
    """chromium and its driver from Debian's packages, installed on a fresh machine (root, as CI runs)."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver is None:
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
            check=True,
            timeout=900,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert browser and driver, "chromium and chromedriver must be installed (apt-get install chromium-driver)"
    return browser, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    path, driver_path = _browser_tools()
    options = webdriver.ChromeOptions()
    options.binary_location = path
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=390,844", "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(arg)  # a phone-sized window: the page must stay usable there
    service = DriverService(executable_path=driver_path)  # Debian's driver: nothing is downloaded
    drv = webdriver.Chrome(options=options, service=service)
    try:
        yield drv
    finally:
        drv.quit()


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Stack, int]]:
    port = free_port()
    with running_stack({"SYMBOLS": "AAPL", "MONITOR_PORT": str(port)}, programs=PROGRAMS, timeout=40) as st:
        yield st, port


def _text(drv: webdriver.Chrome, element_id: str) -> str:
    return str(drv.find_element(By.ID, element_id).text)


def _ctl(st: Stack, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bin" / "gateway-sim-ctl"), "--port", str(st.settings.ib_port), *args],
        env=st.env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


def test_the_dashboard_shows_the_stack_live(browser: webdriver.Chrome, stack: tuple[Stack, int]) -> None:
    st, port = stack
    browser.get(f"http://127.0.0.1:{port}/")
    wait_for("the banner", lambda: _text(browser, "mode") == "PAPER", 20)
    assert "simulator" in _text(browser, "gateway")
    assert "DU" in _text(browser, "account") and "1234" not in _text(browser, "account")  # masked
    assert _text(browser, "readonly") == "orders on \u00b7 view only"  # IB_READONLY off; no halt button
    wait_for("bridge READY", lambda: _text(browser, "bridge-state") == "READY", 30)
    wait_for("the programs", lambda: "executor" in _text(browser, "programs"), 10)
    browser.execute_script("window.__same_page = true")  # gone if the page were reloaded

    cid = f"dash-{uuid.uuid4().hex[:8]}"
    ack = request_once(
        req_endpoint(st.settings, "bridge"),
        PlaceOrder(client_order_id=cid, symbol="AAPL", side="BUY", quantity=Decimal(1), order_type="MKT"),
        timeout=10,
    )
    assert ack.ok, ack.error
    wait_for("the fill on the page", lambda: cid in _text(browser, "fills"), 20)
    assert browser.execute_script("return window.__same_page === true")

    _ctl(st, "silent", "on")
    try:
        wait_for("bridge STALLED", lambda: _text(browser, "bridge-state") == "STALLED", 30)
        assert "What to do" in _text(browser, "bridge-remedy")
    finally:
        _ctl(st, "silent", "off")
    wait_for("bridge READY again", lambda: _text(browser, "bridge-state") == "READY", 40)
    assert browser.execute_script("return window.__same_page === true")


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read(200)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_beyond_127_0_0_1_every_path_needs_the_token() -> None:
    port, token = free_port(), uuid.uuid4().hex
    env = {"MONITOR_PORT": str(port), "MONITOR_BIND": "127.0.0.2", "DASHBOARD_TOKEN": token}
    with running_stack(env, programs=("monitor",), timeout=30) as st:
        base = f"http://127.0.0.2:{port}"
        wait_for("the dashboard up", lambda: _get(base + "/")[0] == 401, 20)
        for path in ("/", "/events", "/state", "/metrics", "/static/dashboard.js", "/nope", "/halt",
                     "/?token=wrong", "/%2e%2e/etc/passwd", "/state?x=1"):  # fmt: skip
            status, body = _get(base + path)
            assert status in (400, 401), (path, status)  # a bad query may be refused before the token
            assert b"Traceback" not in body
        assert _get(base + "/state", {"Authorization": "Bearer wrong"})[0] == 401
        status, body = _get(base + "/state", {"Authorization": f"Bearer {token}"})
        assert status == 200 and body.startswith(b'{"at_ns"')
        assert _get(base + "/metrics", {"Authorization": f"Bearer {token}"})[0] == 200
        assert _get(base + f"/?token={token}")[0] == 200
        assert _get(base + "/nope", {"Authorization": f"Bearer {token}"})[0] == 404
        assert _get(base + "/state?%zz=%%", {"Authorization": f"Bearer {token}"})[0] == 400
        assert token not in st.log("monitor")


def test_beyond_127_0_0_1_without_a_token_the_monitor_exits_78_naming_the_key(stack_env: Path) -> None:
    env: dict[str, Any] = {**os.environ, "MONITOR_BIND": "127.0.0.2", "MONITOR_PORT": str(free_port())}
    env.pop("DASHBOARD_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-m", "procs.monitor"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 78, done.stderr[-2000:]
    assert "DASHBOARD_TOKEN" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
