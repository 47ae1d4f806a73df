"""The draw-a-digit page in headless Chromium: a drawn 1, 0 and 7 are classified right, on the
server and in the browser (onnxruntime-web on the ONNX export) alike; on a phone the answer is in
view while drawing; the model picker switches among the models served."""

import math
import os
import shutil
import tempfile

import pytest
from serve_helpers import call, train_and_export

from mnist_estimator.portable import convert
from mnist_estimator.serve import app as app_lib
from mnist_estimator.serve import batching, config, server
from mnist_estimator.serve import manager as manager_lib

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "docs", "serve_page.png")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
  pytest.skip("no browser: apt-get install -y chromium chromium-driver (.ci/run does)",
              allow_module_level=True)

from selenium.webdriver.common.actions import interaction  # noqa: E402  # pylint: disable=g-import-not-at-top
from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402  # pylint: disable=g-import-not-at-top
from selenium.webdriver.common.actions.pointer_input import PointerInput  # noqa: E402  # pylint: disable=g-import-not-at-top
from selenium.webdriver.common.by import By  # noqa: E402  # pylint: disable=g-import-not-at-top
from selenium.webdriver.support.ui import Select  # noqa: E402  # pylint: disable=g-import-not-at-top
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402  # pylint: disable=g-import-not-at-top


def _line(x0, y0, x1, y1, n=12):
  return [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for i in range(n + 1)]


# Strokes as points on the 280x280 pad, relative to its centre (thick, MNIST-like digits).
DIGITS = {
    1: [_line(5, -95, -5, 95)],
    0: [[(60 * math.sin(2 * math.pi * i / 36), -90 * math.cos(2 * math.pi * i / 36))
         for i in range(37)]],
    7: [_line(-65, -85, 65, -85), _line(65, -85, -5, 95)],
}


@pytest.fixture(scope="module")
def digits_export(sample, tmp_path_factory):
  """An mlp that really reads digits (the whole sample, 600 steps, ~97%), as a SavedModel.

  Its ONNX file lies beside the SavedModel version, as --export_format=saved_model,onnx puts it.
  """
  root = str(tmp_path_factory.mktemp("browser"))
  path = train_and_export(sample, root, model="mlp", steps=600, batch_size=100,
                          learning_rate=0.8, hidden_units=[500], moving_average_decay=0.99)
  convert.convert(path, "onnx")
  return path


@pytest.fixture(scope="module")
def page_url(digits_export):
  """A server of digits_export as model "mnist"."""
  app, manager, batcher = server.build(digits_export, poll_seconds=0,
                                       batch_options=batching.BatchOptions())
  with server.BackgroundServer(app) as background:
    yield background.url
  manager.stop()
  batcher.close()


def _chromium(mobile=None):
  """(headless Chromium, its profile folder): a desktop window, or `mobile` emulation."""
  os.environ.setdefault("SE_OFFLINE", "true")  # no Selenium Manager downloads
  profile = tempfile.mkdtemp(prefix="chromium-profile-")
  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--window-size=1100,760", f"--user-data-dir={profile}"):
    options.add_argument(flag)
  if mobile:
    options.add_experimental_option("mobileEmulation", mobile)
  driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER),
                            options=options)
  return driver, profile


@pytest.fixture(scope="module")
def browser():
  driver, profile = _chromium()
  yield driver
  driver.quit()
  shutil.rmtree(profile, ignore_errors=True)


PHONE = {"width": 390, "height": 844, "pixelRatio": 3.0, "touch": True, "mobile": True}


@pytest.fixture(scope="module")
def phone():
  """Chromium as a phone: 390x844 CSS pixels at 3 device pixels each, touch input."""
  driver, profile = _chromium({"deviceMetrics": PHONE})
  yield driver
  driver.quit()
  shutil.rmtree(profile, ignore_errors=True)


def _draw(driver, strokes):
  """Draws each stroke with mouse pointer actions: press, move point by point, release."""
  pad = driver.find_element(By.ID, "pad")
  for stroke in strokes:
    actions = webdriver.ActionChains(driver, duration=0)
    actions.move_to_element_with_offset(pad, int(stroke[0][0]), int(stroke[0][1])).click_and_hold()
    for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
      actions.move_by_offset(int(round(x1)) - int(round(x0)), int(round(y1)) - int(round(y0)))
    actions.release().perform()


def _touch_draw(driver, strokes):
  """Draws each stroke with a finger (touch pointer actions), as on a phone."""
  pad = driver.find_element(By.ID, "pad")
  for stroke in strokes:
    builder = ActionBuilder(driver, mouse=PointerInput(interaction.POINTER_TOUCH, "finger"),
                            duration=0)
    finger = builder.pointer_action
    finger.move_to(pad, int(stroke[0][0]), int(stroke[0][1])).pointer_down()
    for x, y in stroke[1:]:
      finger.move_to(pad, int(round(x)), int(round(y)))
    finger.pointer_up()
    builder.perform()


@pytest.mark.parametrize("digit", [1, 0, 7])
def test_a_drawn_digit_is_classified(page_url, browser, digit, tmp_path):
  if browser.current_url != page_url + "/":
    browser.get(page_url + "/")
    WebDriverWait(browser, 30).until(
        lambda d: "version" in d.find_element(By.ID, "model-status").text)
  browser.find_element(By.ID, "clear").click()
  _draw(browser, DIGITS[digit])
  strokes = str(len(DIGITS[digit]))
  WebDriverWait(browser, 30).until(
      lambda d: d.find_element(By.ID, "pad").get_attribute("data-answers") == strokes)
  shown = browser.find_element(By.ID, "prediction").get_attribute("data-digit")
  assert browser.find_element(By.ID, "error").text == ""
  assert shown == str(digit), browser.find_element(By.ID, "bars").text
  # The 28x28 the model saw has ink, centred.
  ink = browser.execute_script(
      "const d = document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28)"
      ".data; let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return s / 255;")
  assert ink > 20
  if digit == 7:
    # Into the test's temp dir; MNIST_ESTIMATOR_DOCS=1 refreshes the README's picture too,
    # so a plain test run leaves the checkout as it was.
    browser.save_screenshot(str(tmp_path / "serve_page.png"))
    assert os.path.getsize(tmp_path / "serve_page.png") > 10_000
    if os.environ.get("MNIST_ESTIMATOR_DOCS") == "1":
      shutil.copy(tmp_path / "serve_page.png", SCREENSHOT)


def test_a_photo_of_dark_ink_on_paper_is_inverted_and_classified(page_url, browser, sample,
                                                                 tmp_path):
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  digit = sample.x_test[0, :, :, 0].astype(np.float32) / 255.0  # a 7
  big = np.kron(digit, np.ones((6, 5)))  # 168x140, not square
  photo = 235 - 205 * big + np.random.default_rng(0).normal(0, 6, big.shape)
  path = tmp_path / "digit.png"
  path.write_bytes(tf.io.encode_png(np.clip(photo, 0, 255).astype(np.uint8)[..., None]).numpy())
  if browser.current_url != page_url + "/":
    browser.get(page_url + "/")
  browser.find_element(By.ID, "clear").click()
  browser.find_element(By.ID, "upload").send_keys(str(path))
  WebDriverWait(browser, 30).until(
      lambda d: d.find_element(By.ID, "pad").get_attribute("data-answers") == "1")
  assert browser.find_element(By.ID, "prediction").get_attribute("data-digit") == str(
      sample.y_test[0])


@pytest.fixture(scope="module")
def photo_export(tmp_path_factory):
  """(SavedModel, its folder) of a cnn trained on a generated RGB folder (12x10, classes cat,
  dog, eel); no ONNX file."""
  import helpers  # pylint: disable=g-import-not-at-top

  from mnist_estimator.run import plan  # pylint: disable=g-import-not-at-top
  from mnist_estimator.run.spec import RunSpec  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("photos")
  folder = helpers.write_image_folder(root / "f", per_class=20)
  data = plan.load_data(RunSpec.for_model("cnn", dataset=f"folder:{folder}"))
  path = train_and_export(data, str(root), model="cnn", steps=30, optimizer="adam",
                          learning_rate=0.003, dataset=f"folder:{folder}")
  return path, folder


@pytest.fixture(scope="module")
def photo_page(photo_export):
  """A server of photo_export as model "mnist"."""
  path, folder = photo_export
  app, manager, batcher = server.build(path, poll_seconds=0,
                                       batch_options=batching.BatchOptions())
  with server.BackgroundServer(app) as background:
    yield background.url, folder
  manager.stop()
  batcher.close()


def test_an_rgb_model_takes_a_photo_and_names_its_classes(photo_page, browser, tmp_path):
  """#19: class names from the folders, a photo instead of a drawing, the REST API's answer."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  url, folder = photo_page
  browser.get(url + "/")
  WebDriverWait(browser, 30).until(lambda d: "RGB" in d.find_element(By.ID, "model-status").text)
  assert "12x10 RGB, 3 classes" in browser.find_element(By.ID, "model-status").text
  assert browser.find_element(By.ID, "title").text == "Classify a photo"
  names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#bars .digit")]
  assert names == ["cat", "dog", "eel"]
  _draw(browser, DIGITS[1])  # drawing does nothing on a photo model
  assert browser.find_element(By.ID, "pad").get_attribute("data-answers") == "0"
  photo = os.path.join(folder, "eel", "003.png")
  browser.find_element(By.ID, "upload").send_keys(photo)
  WebDriverWait(browser, 30).until(
      lambda d: d.find_element(By.ID, "pad").get_attribute("data-answers") == "1")
  assert browser.find_element(By.ID, "error").text == ""
  # What the page sent is the photo itself (12x10 RGB, scaled up on the pad and back) ...
  seen = np.array(browser.execute_script(
      "const c = document.getElementById('seen'); const d = c.getContext('2d')"
      ".getImageData(0, 0, c.width, c.height).data; const out = [];"
      "for (let i = 0; i < d.length; i += 4) out.push(d[i], d[i + 1], d[i + 2]);"
      "return [c.height, c.width, out];")[2], np.float32).reshape(12, 10, 3) / 255
  original = np.asarray(Image.open(photo), np.float32) / 255
  assert np.abs(seen - original).mean() < 0.05
  # ... and the page names the class the REST API gives for it.
  status, body = call(url, "POST", "/v1/models/mnist:predict",
                      {"instances": [seen.round(3).tolist()]})
  assert status == 200, body
  expected = int(np.argmax(body["predictions"][0]["probabilities"]))
  prediction = browser.find_element(By.ID, "prediction")
  assert prediction.get_attribute("data-digit") == str(expected)
  assert prediction.get_attribute("data-class") == ["cat", "dog", "eel"][expected]
  assert prediction.text.startswith(["cat", "dog", "eel"][expected] + " (")
  browser.save_screenshot(str(tmp_path / "photo_page.png"))
  if os.environ.get("MNIST_ESTIMATOR_DOCS") == "1":
    shutil.copy(tmp_path / "photo_page.png", SCREENSHOT.replace(".png", "_photo.png"))


def _answer(driver, count, where):
  """(digit, probabilities) once the page has answered `count` times, the last one `where`."""
  WebDriverWait(driver, 60).until(
      lambda d: d.find_element(By.ID, "pad").get_attribute("data-answers") == str(count)
      and d.find_element(By.ID, "pad").get_attribute("data-where") == where)
  assert driver.find_element(By.ID, "error").text == ""
  return (driver.find_element(By.ID, "prediction").get_attribute("data-digit"),
          driver.execute_script("return window.lastProbabilities;"))


def test_in_this_browser_gives_the_servers_class(page_url, browser):
  assert os.path.isfile(os.path.join(app_lib.STATIC_DIR, "ort", "ort.wasm.min.js")), (
      "onnxruntime-web is not bundled: `make install` copies it in with npm")
  browser.get(page_url + "/")  # a fresh page: the server mode, the toggle set up
  toggle = browser.find_element(By.CSS_SELECTOR, 'input[name="where"][value="browser"]')
  WebDriverWait(browser, 30).until(lambda d: toggle.is_enabled())
  assert "onnxruntime-web on model.onnx" in browser.find_element(By.ID, "where-note").text
  for digit in (7, 0):
    browser.find_element(By.CSS_SELECTOR, 'input[name="where"][value="server"]').click()
    browser.find_element(By.ID, "clear").click()
    _draw(browser, DIGITS[digit])
    strokes = len(DIGITS[digit])
    on_server, server_probs = _answer(browser, strokes, "server")
    toggle.click()  # the same drawing again, now run by onnxruntime-web in the page
    in_browser, browser_probs = _answer(browser, strokes + 1, "browser")
    assert in_browser == on_server == str(digit)
    assert max(abs(a - b) for a, b in zip(server_probs, browser_probs)) < 1e-4
  browser.find_element(By.CSS_SELECTOR, 'input[name="where"][value="server"]').click()


def _in_view(driver, element_id):
  """The element's rect and whether it lies wholly inside the viewport as it is now."""
  return driver.execute_script(
      "const r = document.getElementById(arguments[0]).getBoundingClientRect();"
      "return [r.top, r.bottom, r.left, r.right, r.top >= 0 && r.left >= 0 &&"
      " r.bottom <= window.innerHeight && r.right <= window.innerWidth];", element_id)


@pytest.mark.parametrize("models", [1, 2])
def test_on_a_phone_the_answer_is_in_view_while_drawing(models, request, phone, tmp_path):
  """#29: 390x844 CSS pixels, a finger draws a 7; the answer shows without any scrolling (with
  the model picker shown too: two models, the page opened on ?model=digits)."""
  if models == 1:
    phone.get(request.getfixturevalue("page_url") + "/")
  else:
    phone.get(request.getfixturevalue("two_models")[0] + "/?model=digits")
  WebDriverWait(phone, 30).until(lambda d: "28x28" in d.find_element(By.ID, "model-status").text)
  assert phone.find_element(By.ID, "model").is_displayed() == (models == 2)
  if models == 2:
    assert _in_view(phone, "model")[-1]
  assert phone.execute_script("return [window.innerWidth, window.innerHeight];") == [390, 844]
  assert phone.execute_script("return navigator.maxTouchPoints;") > 0
  assert _in_view(phone, "pad")[-1], "the drawing pad is not wholly in view"
  phone.execute_script("window.kinds = []; document.getElementById('pad').addEventListener("
                       "'pointerdown', (e) => window.kinds.push(e.pointerType));")
  _touch_draw(phone, DIGITS[7])
  WebDriverWait(phone, 30).until(
      lambda d: d.find_element(By.ID, "pad").get_attribute("data-answers") == "2")
  assert phone.find_element(By.ID, "error").text == ""
  assert phone.find_element(By.ID, "prediction").get_attribute("data-digit") == "7"
  assert phone.find_element(By.ID, "prediction").text.startswith("7 (")
  assert phone.execute_script("return window.kinds;") == ["touch", "touch"]  # a finger drew it
  assert phone.execute_script("return [window.scrollX, window.scrollY];") == [0, 0]
  for answer in ("prediction", "bars"):  # the class and its probabilities
    assert _in_view(phone, answer)[-1], (answer, _in_view(phone, answer))
  # Nothing wider than the phone (no sideways scrolling either).
  assert phone.execute_script("return document.documentElement.scrollWidth;") <= 390
  phone.save_screenshot(str(tmp_path / "serve_page_phone.png"))
  assert os.path.getsize(tmp_path / "serve_page_phone.png") > 10_000
  if models == 1 and os.environ.get("MNIST_ESTIMATOR_DOCS") == "1":
    shutil.copy(tmp_path / "serve_page_phone.png", SCREENSHOT.replace(".png", "_phone.png"))


@pytest.fixture(scope="module")
def two_models(digits_export, photo_export, tmp_path_factory):
  """A server of "digits" (digits_export, with ONNX) and "photos" (photo_export, the default),
  and "waiting", whose base path holds no version yet."""
  models = [config.ModelConfig("photos", photo_export[0]),
            config.ModelConfig("digits", digits_export),
            config.ModelConfig("waiting", str(tmp_path_factory.mktemp("none")))]
  manager = manager_lib.ModelManager(models=models, poll_seconds=0)
  manager.start()
  batcher = batching.Batcher(batching.BatchOptions(), 2)
  with server.BackgroundServer(app_lib.make_app(manager, batcher)) as bg:
    yield bg.url, photo_export[1]
  manager.stop()
  batcher.close()


def _predict_paths(driver):
  """The REST paths the page has posted predictions to, in order (the Resource Timing API)."""
  return driver.execute_script(
      "return performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname)"
      ".filter((p) => p.endsWith(':predict'));")


def _seen_input(driver, channels):
  """What the page sent: the "model saw" canvas as [H][W] or [H][W][3] in 0..1."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  height, width, rgb = driver.execute_script(
      "const c = document.getElementById('seen'); const d = c.getContext('2d')"
      ".getImageData(0, 0, c.width, c.height).data; const out = [];"
      "for (let i = 0; i < d.length; i += 4) out.push(d[i], d[i + 1], d[i + 2]);"
      "return [c.height, c.width, out];")
  image = np.array(rgb, np.float32).reshape(height, width, 3) / 255
  return (image if channels == 3 else image[..., 0]).round(3).tolist()


def _rest_probabilities(url, name, image):
  code, body = call(url, "POST", f"/v1/models/{name}:predict", {"instances": [image]})
  assert code == 200, body
  return body["predictions"][0]["probabilities"]


def test_the_picker_switches_the_model_its_classes_and_where_it_asks(two_models, browser,
                                                                     tmp_path):
  """#29: /page/models lists the models served; the page's picker switches the input, the class
  names, the REST path and the ONNX file."""
  url, folder = two_models
  code, listed = call(url, "GET", "/page/models")
  assert code == 200
  assert listed["default"] == "photos"
  assert [m["name"] for m in listed["models"]] == ["digits", "photos"]  # "waiting": no version
  assert all(m["version"].isdigit() for m in listed["models"])
  assert call(url, "HEAD", "/model.onnx?name=digits", raw=True)[0] == 200
  for query in ("", "?name=photos", "?name=nope"):  # the default (photos) has no ONNX file
    assert call(url, "GET", "/model.onnx" + query)[0] == 404, query

  browser.get(url + "/")  # the default model first: photos
  WebDriverWait(browser, 30).until(lambda d: "RGB" in d.find_element(By.ID, "model-status").text)
  picker = Select(browser.find_element(By.ID, "model"))
  assert browser.find_element(By.ID, "model").is_displayed()
  assert [o.text for o in picker.options] == ["digits", "photos"]
  assert picker.first_selected_option.text == "photos"
  browser_radio = browser.find_element(By.CSS_SELECTOR, 'input[name="where"][value="browser"]')
  WebDriverWait(browser, 30).until(
      lambda d: "no ONNX file" in d.find_element(By.ID, "where-note").text)
  assert not browser_radio.is_enabled()

  picker.select_by_visible_text("digits")  # 28x28 grey, ten digits, its ONNX file
  WebDriverWait(browser, 30).until(
      lambda d: 'model "digits"' in d.find_element(By.ID, "model-status").text)
  assert "28x28 grey, 10 classes" in browser.find_element(By.ID, "model-status").text
  assert browser.find_element(By.ID, "title").text == "Draw a digit"
  assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#bars .digit")] == [
      str(k) for k in range(10)]
  assert browser.current_url.endswith("/?model=digits")
  WebDriverWait(browser, 30).until(lambda d: browser_radio.is_enabled())
  _draw(browser, DIGITS[7])
  digit, probabilities = _answer(browser, 2, "server")
  assert digit == "7"
  assert browser.find_element(By.ID, "prediction").get_attribute("data-model") == "digits"
  assert _predict_paths(browser)[-2:] == ["/v1/models/digits:predict"] * 2
  expected = _rest_probabilities(url, "digits", _seen_input(browser, 1))
  assert max(abs(a - b) for a, b in zip(probabilities, expected)) < 1e-4
  browser.save_screenshot(str(tmp_path / "serve_page_models.png"))
  if os.environ.get("MNIST_ESTIMATOR_DOCS") == "1":
    shutil.copy(tmp_path / "serve_page_models.png", SCREENSHOT.replace(".png", "_models.png"))
  browser_radio.click()  # in this browser: /model.onnx?name=digits
  in_browser, browser_probs = _answer(browser, 3, "browser")
  assert in_browser == "7"
  assert max(abs(a - b) for a, b in zip(probabilities, browser_probs)) < 1e-4

  picker.select_by_visible_text("photos")  # back: 12x10 RGB, cat/dog/eel, no ONNX file
  WebDriverWait(browser, 30).until(
      lambda d: "12x10 RGB, 3 classes" in d.find_element(By.ID, "model-status").text)
  assert browser.find_element(By.ID, "title").text == "Classify a photo"
  assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#bars .digit")] == [
      "cat", "dog", "eel"]
  WebDriverWait(browser, 30).until(lambda d: not browser_radio.is_enabled())
  assert browser.find_element(
      By.CSS_SELECTOR, 'input[name="where"][value="server"]').is_selected()
  browser.find_element(By.ID, "upload").send_keys(os.path.join(folder, "dog", "004.png"))
  digit, probabilities = _answer(browser, 1, "server")
  assert browser.find_element(By.ID, "prediction").get_attribute("data-model") == "photos"
  assert _predict_paths(browser)[-1] == "/v1/models/photos:predict"
  expected = _rest_probabilities(url, "photos", _seen_input(browser, 3))
  assert len(probabilities) == 3
  assert max(abs(a - b) for a, b in zip(probabilities, expected)) < 1e-4
  assert digit == str(expected.index(max(expected)))
  assert browser.find_element(By.ID, "prediction").text.startswith(
      ["cat", "dog", "eel"][int(digit)] + " (")


def test_one_model_hides_the_picker(page_url, browser):
  browser.get(page_url + "/")
  WebDriverWait(browser, 30).until(
      lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 1)
  assert not browser.find_element(By.ID, "model").is_displayed()
  code, listed = call(page_url, "GET", "/page/models")
  assert code == 200 and listed["default"] == "mnist" and len(listed["models"]) == 1
