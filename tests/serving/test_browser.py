"""The explorer used as a person would: a real headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium) opens the page, types a sentence, waits for the heatmap,
hovers a target piece, and scores a pair; what it renders is checked against the library."""

import shutil

import pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium: pip install 'attention-nmt[browser]'")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="needs Chromium and its driver (Debian: apt install chromium chromium-driver)",
    ),
]
SENTENCE = "ka lo mi ne"


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def texts(browser, selector: str) -> list[str]:
    return [element.get_attribute("textContent") for element in browser.find_elements(By.CSS_SELECTOR, selector)]


def open_page(browser, explorer) -> None:
    browser.get(explorer.url)
    WebDriverWait(browser, 30).until(lambda page: "parameters" in page.find_element(By.ID, "model-info").text)


def test_a_person_translates_a_sentence_and_sees_its_attention(explorer, browser, tmp_path):
    open_page(browser, explorer)
    assert browser.find_element(By.ID, "model-info").text.startswith("toy: xx → yy")
    browser.find_element(By.ID, "source").send_keys(SENTENCE)
    browser.find_element(By.ID, "translate").click()
    WebDriverWait(browser, 60).until(lambda page: page.find_elements(By.CSS_SELECTOR, "#heatmap td"))

    expected = explorer.translator.translate([SENTENCE])[0]
    assert browser.find_element(By.CSS_SELECTOR, "#translations li.selected .text").text == expected
    (scored,) = explorer.translator.score([SENTENCE], [expected], attention=True)
    sources, targets = [*scored.source_pieces, "</s>"], [*scored.target_pieces, "</s>"]
    assert texts(browser, "#heatmap th.source-piece") == sources
    assert texts(browser, "#heatmap th.target-piece") == targets
    assert len(browser.find_elements(By.CSS_SELECTOR, "#heatmap td")) == len(sources) * len(targets)
    (links,) = explorer.translator.align([SENTENCE], [expected])
    assert len(browser.find_elements(By.CSS_SELECTOR, "#links line")) == len(links)

    row = browser.find_elements(By.CSS_SELECTOR, "#heatmap tr[data-target]")[0]
    ActionChains(browser).move_to_element(row.find_element(By.CSS_SELECTOR, "th.target-piece")).perform()
    attended = texts(browser, "#heatmap th.source-piece.attended")
    assert attended == [piece for piece, weight in zip(sources, scored.attention[0]) if weight >= 0.1]
    assert "hovered" in row.get_attribute("class")
    browser.save_screenshot(str(tmp_path / "explorer.png"))


def test_a_person_asks_for_three_hypotheses(explorer, browser):
    open_page(browser, explorer)
    Select(browser.find_element(By.ID, "nbest")).select_by_visible_text("3")
    browser.find_element(By.ID, "source").send_keys(SENTENCE)
    browser.find_element(By.ID, "translate").click()
    WebDriverWait(browser, 60).until(
        lambda page: len(page.find_elements(By.CSS_SELECTOR, "#translations li .text")) == 3
    )
    expected = [h.text for h in explorer.translator.translate_nbest([SENTENCE], nbest=3)[0]]
    assert texts(browser, "#translations li .text") == expected


def test_a_person_scores_a_given_pair(explorer, browser):
    open_page(browser, explorer)
    browser.find_element(By.ID, "tab-score").click()
    browser.find_element(By.ID, "score-source").send_keys("ka lo mi")
    browser.find_element(By.ID, "score-target").send_keys("three two one")
    browser.find_element(By.ID, "score").click()
    WebDriverWait(browser, 60).until(lambda page: "perplexity" in page.find_element(By.ID, "score-result").text)
    (scored,) = explorer.translator.score(["ka lo mi"], ["three two one"], attention=True)
    assert f"log P = {scored.log_prob:.3f}" in browser.find_element(By.ID, "score-result").text
    assert texts(browser, "#heatmap th.target-piece") == [*scored.target_pieces, "</s>"]


def test_an_empty_request_shows_the_servers_reason(explorer, browser):
    open_page(browser, explorer)
    browser.find_element(By.ID, "translate").click()
    WebDriverWait(browser, 30).until(lambda page: page.find_element(By.ID, "error").text)
    assert '"text" is empty' in browser.find_element(By.ID, "error").text
