"""The sinks through Apprise against real receivers: a json:// webhook (HTTP) and mailto:// (SMTP, aiosmtpd);
a hanging or refusing sink retried with backoff in its own task, counted, never a busy loop; a bad URL exits
78 naming ALERT_URLS with the secret masked."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from procs.monitor import journal as jn
from procs.monitor.notices import Notice
from procs.monitor.sinks import deliver_forever, parse_sinks, send_once
from shared.config import ConfigError
from tests.procs.monitor.receivers import hook_server, smtp_server
from tests.support.sim import free_port
from tests.support.stack import REPO, write_env_file


def record(title: str = "Trading halted") -> jn.AlertRecord:
    return jn.new_record(
        Notice("halt", "trading", "HALTED", "CRITICAL", title, "daily loss limit", "resume"), "due"
    )


async def test_an_alert_reaches_a_json_webhook_and_a_mailbox() -> None:
    with hook_server() as hook, smtp_server() as (smtp_port, inbox):
        sinks = parse_sinks(
            f"{hook.json_url()} mailto://example.com:{smtp_port}?smtp=127.0.0.1&from=bot@example.com&to=ops@example.com"
        )
        assert [s.name for s in sinks] == ["json#1", "mailto#2"]
        results = [await send_once(s, record()) for s in sinks]
        assert results == ["", ""]
        doc = hook.at("/hook")[0].json()
        assert doc["title"] == "[CRITICAL] Trading halted" and "daily loss limit" in doc["message"]
        assert (
            inbox.messages[0]["to"] == ["ops@example.com"] and "Trading halted" in inbox.messages[0]["data"]
        )


async def test_a_hanging_then_refusing_sink_is_retried_with_backoff_counted_and_then_delivers() -> None:
    with hook_server() as hook:
        hook.mode = "hang"
        (sink,) = parse_sinks(hook.json_url())
        stop = asyncio.Event()
        delivered: list[str] = []
        task = asyncio.create_task(
            deliver_forever(sink, stop, lambda s, r: delivered.append(r.id), backoff_first=0.2)
        )
        alert = record()
        sink.queue.put_nowait(alert)
        started = time.monotonic()
        while sink.failures < 2 and time.monotonic() - started < 20:
            await asyncio.sleep(0.1)
        assert sink.failures >= 2 and delivered == []
        hook.mode = "refuse"
        tried = len(hook.hits)
        await asyncio.sleep(2.0)
        assert 1 <= len(hook.hits) - tried <= 4  # 0.2, 0.4, 0.8 s... apart: backoff, not a busy loop
        hook.mode = "ok"
        while not delivered and time.monotonic() - started < 30:
            await asyncio.sleep(0.1)
        stop.set()
        await task
        assert delivered == [alert.id] and sink.failing_in_a_row == 0 and sink.last_success_ns > 0


def test_a_url_apprise_cannot_use_is_a_config_error_with_the_secret_masked() -> None:
    with pytest.raises(ConfigError) as err:
        parse_sinks("json://127.0.0.1:9/ok tgram://")
    assert "ALERT_URLS" in str(err.value) and "#2" in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_sinks("nosuchservice://topsecret-token@host/path")
    assert "topsecret" not in str(err.value) and "nosuchservice://****" in str(err.value)


def test_the_monitor_exits_78_naming_alert_urls_without_the_secret(short_tmp: Path) -> None:
    write_env_file(
        short_tmp / ".env",
        {
            "ALERT_URLS": "nosuchservice://hunter2-token@x/y",
            "MONITOR_PORT": str(free_port()),
            "VAR_DIR": "var",
        },
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("VAR_DIR",)}
    run = subprocess.run(
        [sys.executable, "-m", "procs.monitor"],
        cwd=REPO,
        env={**env, "STACK_HOME": str(short_tmp)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 78, run.stderr
    assert "ALERT_URLS" in run.stderr and "hunter2" not in run.stderr + run.stdout
    assert len(run.stderr.strip().splitlines()) == 1
    log = (short_tmp / "var" / "log" / "monitor.log").read_text()
    assert "hunter2" not in log
