"""The example chat in two headless Chromium pages: each lands on its own
gunicorn gevent server through the sticky balancer, and what is typed on one
page appears on the other, also across a Redis restart. Screenshots of both
pages are kept in test-artifacts/browser/."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.ports import free_port
from tests.support.process_group import ProcessGroup

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / 'examples' / 'flask'
ARTIFACTS = REPO / 'test-artifacts' / 'browser'
CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
WORKER = 'geventwebsocket.gunicorn.workers.GeventWebSocketWorker'


def require_browser() -> None:
    """Skip without Chromium, its driver, selenium or the example's JS
    client; fail instead when SIO_REQUIRE_BROWSER=1 (CI)."""
    problems = [f'{path} is missing' for path in (CHROMIUM, CHROMEDRIVER)
                if not os.path.exists(path)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        problems.append('selenium is not installed')
    if not (EXAMPLE / 'node_modules' / 'socket.io-client').is_dir():
        problems.append('run npm ci --prefix examples/flask')
    if problems:
        message = 'browser test unavailable: ' + '; '.join(problems) + \
            ' (Debian: apt-get install chromium chromium-driver)'
        if os.environ.get('SIO_REQUIRE_BROWSER') == '1':
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f'{url} never answered'
        time.sleep(0.1)


@pytest.fixture
def example_cluster(redis_server, tmp_path):
    """Two servers of the example under gunicorn, and the balancer."""
    processes = []

    def start(name: str, argv: list[str], env: dict | None = None,
              cwd: Path | None = None) -> None:
        process = ProcessGroup(argv, stdout_path=tmp_path / f'{name}.out',
                               stderr_path=tmp_path / f'{name}.err',
                               cwd=cwd, env=env)
        processes.append(process)
        process.start()

    servers = {}
    for name in ('A', 'B'):
        port = free_port()
        env = dict(os.environ, REDIS_URL=redis_server.url, SERVER_NAME=name)
        env.pop('ASYNC_MODE', None)
        start(f'server-{name}', [sys.executable, '-m', 'gunicorn', '-k',
                                 WORKER, '-w', '1', '-b',
                                 f'127.0.0.1:{port}', 'app:app'],
              env=env, cwd=EXAMPLE)
        servers[name] = port
    balancer = free_port()
    argv = [sys.executable, str(EXAMPLE / 'balancer.py'), '--port',
            str(balancer)]
    for name, port in servers.items():
        argv += ['--backend', f'{name}=127.0.0.1:{port}']
    start('balancer', argv)
    try:
        for port in servers.values():
            wait_http(f'http://127.0.0.1:{port}/health')
        wait_http(f'http://127.0.0.1:{balancer}/health')
        yield f'http://127.0.0.1:{balancer}'
    finally:
        for process in processes:
            process.terminate()
        for log in sorted(tmp_path.glob('*.err')):
            print(f'--- {log.name}\n{log.read_text()[-3000:]}')


@pytest.fixture
def browser(tmp_path):
    """Open headless Chromium windows (Debian's, with its chromedriver)."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    # the machine is offline: never let Selenium look for drivers online
    os.environ.setdefault('SE_OFFLINE', 'true')
    drivers = []

    def open_window(name: str):
        options = Options()
        options.binary_location = CHROMIUM
        for flag in ('--headless=new', '--no-sandbox', '--disable-gpu',
                     '--disable-dev-shm-usage', '--no-first-run',
                     '--disable-background-networking',
                     '--disable-component-update', '--disable-sync',
                     '--window-size=1000,700',
                     f'--user-data-dir={tmp_path / f"chromium-{name}"}'):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER),
                                  options=options)
        drivers.append(driver)
        return driver

    yield open_window
    for driver in drivers:
        driver.quit()


def text_of(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By
    return driver.find_element(By.ID, element_id).text


def wait_page(driver, condition, what: str, timeout: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout).until(lambda d: condition(d),
                                                message=what)


def type_into(driver, element_id: str, text: str, submit: str) -> None:
    from selenium.webdriver.common.by import By
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)
    driver.find_element(By.CSS_SELECTOR, f'#{submit} button').click()


def messages(driver) -> str:
    return text_of(driver, 'messages')


def test_two_pages_on_two_servers_chat_across_a_redis_restart(
        example_cluster, browser, redis_server):
    pages = {}
    for user in ('alice', 'bob'):
        page = browser(user)
        page.get(example_cluster + '/')
        wait_page(page, lambda d: text_of(d, 'status') == 'connected',
                  f'{user} connected')
        wait_page(page, lambda d: text_of(d, 'socket-server') in ('A', 'B'),
                  f'{user} knows its server')
        pages[user] = page
    alice, bob = pages['alice'], pages['bob']
    # the sticky balancer spread them, and kept each on its server
    assert {text_of(alice, 'socket-server'), text_of(bob, 'socket-server')} \
        == {'A', 'B'}
    for user, page in pages.items():
        assert text_of(page, 'page-server') == text_of(page, 'socket-server')
        type_into(page, 'user', user, 'join')
    for page in (alice, bob):
        wait_page(page, lambda d: len(text_of(d, 'people').splitlines())
                  == 2, 'both in the lobby, cluster-wide')

    type_into(alice, 'text', 'hello from alice', 'say')
    wait_page(bob, lambda d: 'alice: hello from alice' in messages(d),
              'alice reaches bob')
    type_into(bob, 'text', 'hi alice', 'say')
    wait_page(alice, lambda d: 'bob: hi alice' in messages(d),
              'bob reaches alice')

    redis_server.kill()
    type_into(alice, 'text', 'while Redis is down', 'say')
    wait_page(alice, lambda d: 'while Redis is down' in messages(d),
              'local delivery without Redis')
    redis_server.restart()
    wait_page(bob, lambda d: 'alice: while Redis is down' in messages(d),
              'the message sent during the outage arrives')
    type_into(bob, 'text', 'after the restart', 'say')
    wait_page(alice, lambda d: 'bob: after the restart' in messages(d),
              'traffic after the restart')

    for page in (alice, bob):
        assert messages(page).count('while Redis is down') == 1
    keep_screenshots(pages)


def keep_screenshots(pages) -> None:
    """One screenshot per page, and both side by side in browser.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for user, page in pages.items():
        page.save_screenshot(str(ARTIFACTS / f'{user}.png'))
    side_by_side = ARTIFACTS / 'side-by-side.html'
    side_by_side.write_text(
        '<body style="margin:0;display:flex">' + ''.join(
            f'<img src="{user}.png" style="width:50%;border:1px solid #999">'
            for user in pages) + '</body>')
    page = next(iter(pages.values()))
    page.set_window_size(2000, 700)
    page.get(side_by_side.as_uri())
    page.save_screenshot(str(ARTIFACTS / 'browser.png'))
    print(f'screenshots: {ARTIFACTS}')
