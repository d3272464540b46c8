"""The chat page of `ouro serve` in a real headless chromium (Debian's chromium +
chromium-driver, driven by selenium): load the page, ask a question, wait for the streamed
answer, check the depth-coloured token spans, the histogram and the tok/s line, and save a
screenshot. Usage:
    python3 serve_browser.py BASE_URL SCREENSHOT.png QUESTION EXPECTED_ANSWER
Prints the answer, the loops seen and the screenshot path."""

import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, shot, question, expected = sys.argv[1:5]

# xterm-256 colours 39, 44, 78, 184 (loops 1-4), as `ouro chat --show-depth`.
LOOP_RGB = {1: (0, 175, 255), 2: (0, 215, 215), 3: (95, 215, 135), 4: (215, 215, 0)}

opts = webdriver.ChromeOptions()
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
          "--window-size=1100,700"):
    opts.add_argument(a)
opts.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
try:
    driver.get(base + "/")
    assert driver.title == "ouro chat", driver.title
    # The model line comes from /v1/models.
    WebDriverWait(driver, 60).until(lambda d: "loops" in d.find_element(By.ID, "model").text)
    box = driver.find_element(By.ID, "input")
    box.send_keys(question)
    driver.find_element(By.ID, "send").click()
    # A generous bound so a broken page fails instead of hanging (the answer takes < 1 s).
    WebDriverWait(driver, 120).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".assistant[data-done='1']")
    )
    msg = driver.find_element(By.CSS_SELECTOR, ".assistant")
    spans = msg.find_elements(By.CSS_SELECTOR, "span.tok")
    answer = "".join(s.get_attribute("textContent") for s in spans)
    assert answer == expected, (answer, expected)
    loops = []
    for s in spans:
        ls = [int(x) for x in s.get_attribute("data-loops").split(",") if x]
        loops.extend(ls)
        if not ls:
            continue
        cls = s.get_attribute("class")
        assert f"l{ls[-1]}" in cls.split(), (cls, ls)
        rgb = driver.execute_script("return getComputedStyle(arguments[0]).color", s)
        want = LOOP_RGB[ls[-1]]
        assert rgb.replace(" ", "") == "rgb(%d,%d,%d)" % want, (rgb, want, ls)
    assert loops and all(1 <= l <= 4 for l in loops), loops
    assert len(set(loops)) >= 2, f"expected tokens at several depths: {loops}"
    bars = msg.find_elements(By.CSS_SELECTOR, ".hist .bar")
    assert len(bars) == max(loops), (len(bars), loops)
    rate = msg.find_element(By.CSS_SELECTOR, ".rate").text
    assert "tok/s" in rate and rate.startswith(f"{len(loops)} tokens"), rate
    driver.save_screenshot(shot)
    print("answer:", answer)
    print("loops:", loops)
    print("stats:", rate)
    print("screenshot:", shot)
finally:
    driver.quit()
