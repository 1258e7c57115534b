"""The console in Debian's Chromium: the whole teaching loop a person does by hand, and what a
key keeps out of sight. Screenshots of every page are taken on the way (docs/console)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from policies import shipped_policies_dir
from proxy.app import create_app
from tests.fakes import FakeProvider, WordHashEmbedder
from tests.helpers import on_a_socket
from tests.test_access import MASTER, bearer

QUESTION = "What is the refund window at Acme Corp?"
PARAPHRASE = "How long is the refund window at Acme Corp?"
SELECT_TEXT = """
const [id, wanted] = arguments;
const answer = document.querySelector(`.answer[data-interaction="${id}"]`);
const text = answer.firstChild;
const at = text.data.indexOf(wanted);
const range = document.createRange();
range.setStart(text, at);
range.setEnd(text, at + wanted.length);
const selection = window.getSelection();
selection.removeAllRanges();
selection.addRange(range);
answer.dispatchEvent(new MouseEvent("mouseup", {bubbles: true}));
"""


def manual_review_policies(folder: Path) -> Path:
    """The shipped policy, with every lesson waiting for a person (`review: manual`)."""
    spec = yaml.safe_load((shipped_policies_dir() / "default.yaml").read_text())
    spec["policies"][0]["learn"]["review"] = "manual"
    folder.mkdir()
    (folder / "default.yaml").write_text(yaml.safe_dump(spec))
    return folder


class Proxy:
    def __init__(self, url: str) -> None:
        self.url = url

    def make_key(self, **fields: Any) -> str:
        made = httpx.post(f"{self.url}/v1/keys", json={"name": "reader", **fields}, headers=bearer(MASTER))
        assert made.status_code == 201, made.text
        secret: str = made.json()["secret"]
        return secret

    def ask(self, key: str, question: str, session: str, app: str = "shop", user: str = "u-1") -> str:
        headers = {**bearer(key), "X-App": app, "X-Session-Id": session, "X-User-Id": user}
        body = {"model": "gpt-test", "messages": [{"role": "user", "content": question}]}
        answered = httpx.post(f"{self.url}/v1/chat/completions", json=body, headers=headers, timeout=60)
        assert answered.status_code == 200, answered.text
        interaction: str = answered.json()["id"]
        for _ in range(100):  # the trail writer batches: wait until the row is stored
            if (
                httpx.get(f"{self.url}/v1/interactions/{interaction}", headers=bearer(MASTER)).status_code
                == 200
            ):
                return interaction
            time.sleep(0.05)
        raise AssertionError(f"{interaction} never reached the trail")


def settings_for(make_settings: Any, tmp_path: Path) -> Any:
    """A master key, every lesson reviewed by a person, and prices, so the trail shows cost."""
    settings = make_settings(
        access={"master_key": MASTER}, policies_dir=str(manual_review_policies(tmp_path / "policies"))
    )
    prices = {"input_cost_per_token": 1.5e-7, "output_cost_per_token": 6e-7}
    priced = settings.model_list[0].model_copy(update={"model_info": prices})
    return settings.model_copy(update={"model_list": [priced]})


def other_traffic(proxy: Proxy, key: str) -> None:
    """What else the app saw meanwhile: other users and sessions, one answer judged bad."""
    for n, question in enumerate(
        ("Do you ship to Norway?", "Can I pay with PayPal?", "Where is your office?")
    ):
        asked = proxy.ask(key, question, f"s-other-{n}", user=f"u-{n + 2}")
        verdict = {"rating": -1, "categories": ["incomplete"]} if n == 1 else {"rating": 1}
        sent = httpx.post(
            f"{proxy.url}/v1/feedback",
            json={"interaction_id": asked, **verdict},
            headers=bearer(key),
            timeout=30,
        )
        assert sent.status_code == 201, sent.text


def sign_in(driver: WebDriver, url: str, secret: str, shots: Path | None = None) -> None:
    driver.get(f"{url}/ui/traffic")
    assert "/ui/login" in driver.current_url  # no session yet: the sign-in page
    if shots:
        driver.save_screenshot(str(shots / "login.png"))
    driver.find_element(By.NAME, "key").send_keys(secret)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    loaded(driver, ec.presence_of_element_located((By.ID, "traffic")))


def loaded(driver: WebDriver, condition: Any, timeout: float = 10) -> Any:
    """Wait for `condition` after a click that navigates. While the page is replaced, Chrome can
    answer a query about an element with an unknown error rather than a stale one: retried."""
    return WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,)).until(condition)


def shot(driver: WebDriver, shots: Path, name: str) -> None:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, max(1000, height + 160))  # the page whole, and the window's own edge
    driver.save_screenshot(str(shots / f"{name}.png"))
    driver.set_window_size(1400, 1000)


def test_a_person_teaches_in_place_and_the_next_turn_carries_it(
    browser: WebDriver, make_settings: Any, upstream: Any, provider: FakeProvider, tmp_path: Path, shots: Path
) -> None:
    driver = browser
    with on_a_socket(create_app(settings_for(make_settings, tmp_path))) as url:  # the real MiniLM
        proxy = Proxy(url)
        app_key = proxy.make_key(name="shop-backend", scopes=["chat", "feedback"], apps=["shop"])
        other_traffic(proxy, app_key)
        first = proxy.ask(app_key, QUESTION, "s-journey")
        sign_in(driver, url, proxy.make_key(name="support-lead", scopes=["read", "review"]), shots)

        shot(driver, shots, "traffic")
        driver.find_element(By.PARTIAL_LINK_TEXT, QUESTION).click()
        answer = (By.CSS_SELECTOR, f'.answer[data-interaction="{first}"]')
        loaded(driver, ec.presence_of_element_located(answer))
        driver.execute_script(SELECT_TEXT, first, "30 days")
        form = driver.find_element(By.CSS_SELECTOR, f'form.teach[data-for="{first}"]')
        assert "Marking “30 days”" in form.find_element(By.CLASS_NAME, "selection").text
        form.find_element(By.NAME, "correction").send_keys("45 days")
        Select(form.find_element(By.NAME, "categories")).select_by_value("factually_incorrect")
        form.find_element(By.NAME, "comment").send_keys("the policy changed in March")
        shot(driver, shots, "teach")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        loaded(driver, ec.presence_of_element_located((By.CLASS_NAME, "span-mark")))
        assert "“30 days”" in driver.find_element(By.CLASS_NAME, "span-mark").text

        driver.get(f"{url}/ui/review")
        waiting = driver.find_elements(By.CSS_SELECTOR, "article.lesson.pending")
        assert len(waiting) == 2  # ours, and the other user's thumbs-down with a category
        [pending] = [w for w in waiting if "45 days" in w.find_element(By.CLASS_NAME, "correction").text]
        lesson = pending.get_attribute("id")
        assert "The refund window is 45 days." in pending.find_element(By.CLASS_NAME, "correction").text
        assert "Why it waits" in pending.text
        shot(driver, shots, "review")
        pending.find_element(By.CSS_SELECTOR, "button.approve").click()
        loaded(driver, ec.staleness_of(pending))
        loaded(driver, ec.presence_of_element_located((By.CSS_SELECTOR, "article.pending")))
        assert not driver.find_elements(By.ID, lesson)  # approved; the other one still waits

        driver.get(f"{url}/ui/explain")
        driver.find_element(By.NAME, "q").send_keys(PARAPHRASE)
        driver.find_element(By.NAME, "app").send_keys("shop")
        driver.find_element(By.CSS_SELECTOR, "#explain button[type=submit]").click()
        recalled = loaded(driver, ec.presence_of_element_located((By.ID, "recalled")), 30)
        assert lesson in recalled.text and "corrections" in recalled.text
        injected = driver.find_elements(By.CSS_SELECTOR, ".message.injected")
        assert any("45 days" in message.text for message in injected)
        shot(driver, shots, "explain")

        second = proxy.ask(app_key, PARAPHRASE, "s-journey")
        assert "45 days" in provider.last_text()  # what the provider was sent
        driver.get(f"{url}/ui/sessions/s-journey")
        turn = driver.find_element(By.ID, second)
        injected = turn.find_elements(By.CSS_SELECTOR, ".message.injected")  # set apart from the asked
        assert any("45 days" in message.text for message in injected)
        turn.find_element(By.CSS_SELECTOR, f'.lessons-used a[href="/ui/lessons/{lesson}"]')
        shot(driver, shots, "trail")

        driver.get(f"{url}/ui/lessons/{lesson}")
        assert "active" in driver.find_element(By.TAG_NAME, "h1").text
        assert second in driver.find_element(By.ID, "uses").get_attribute("innerHTML")
        shot(driver, shots, "lesson")
        driver.get(f"{url}/ui/lessons")
        shot(driver, shots, "lessons")
        driver.get(f"{url}/ui/report?days=7&bucket=hour")
        assert "refund window" in driver.find_element(By.ID, "themes").text
        shot(driver, shots, "report")
        driver.find_element(By.CSS_SELECTOR, ".me button").click()  # sign out
        sign_in(driver, url, MASTER)
        driver.get(f"{url}/ui/keys")
        shot(driver, shots, "keys")


def test_a_read_key_cannot_teach_and_an_app_key_sees_only_its_app(
    browser: WebDriver, make_settings: Any, upstream: Any, tmp_path: Path
) -> None:
    driver = browser
    app = create_app(settings_for(make_settings, tmp_path), embedder=WordHashEmbedder())
    with on_a_socket(app) as url:
        proxy = Proxy(url)
        chat = proxy.make_key(scopes=["chat"])
        shop = proxy.ask(chat, "shop question about returns", "s-shop", app="shop")
        proxy.ask(chat, "bank question about loans", "s-bank", app="bank")
        sign_in(driver, url, proxy.make_key(scopes=["read"], apps=["shop"]))

        table = driver.find_element(By.ID, "traffic").text
        assert "shop question" in table and "bank question" not in table
        driver.get(f"{url}/ui/sessions/s-bank")
        assert "404" in driver.find_element(By.TAG_NAME, "h1").text
        driver.get(f"{url}/ui/sessions/s-shop")
        assert not driver.find_elements(By.CSS_SELECTOR, "form.teach")  # nothing to teach with
        status = driver.execute_async_script(
            """const done = arguments[arguments.length - 1];
            const token = document.querySelector("input[name=form_token]").value;  // a valid one
            fetch(`/ui/interactions/${arguments[0]}/feedback`, {method: "POST",
              headers: {"Content-Type": "application/x-www-form-urlencoded"},
              body: "rating=-1&form_token=" + encodeURIComponent(token)}).then(r => done(r.status));""",
            shop,
        )
        assert status == 403
        stored = httpx.get(f"{url}/v1/interactions/{shop}", headers=bearer(MASTER)).json()
        assert stored["feedback"] == []
