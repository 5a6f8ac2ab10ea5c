"""The HTML report: self-contained, escaped, bounded; and what a real headless Chromium makes of it.

The browser tests run Debian's Chromium (`/usr/bin/chromium`, or `$CHROMIUM`) once per report
with `--dump-dom` and `--screenshot`, and are skipped only when no Chromium is installed.
With `ROBUSTCHECK_SAVE_SCREENSHOT=1` the realistic report's screenshot is copied to
docs/report.png (the README's picture).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_fixtures import HOSTILE, IMG, SCRIPT, hostile_record, large_record, realistic_record

from robustcheck.record import AttackRecord, CurvePoint, ModelRecord, RunRecord
from robustcheck.report import charts, html, images

ROOT = Path(__file__).resolve().parents[1]
WINDOW = (1280, 2000)


# -- a small DOM reader (stdlib only) -----------------------------------------------------------
class Dom(HTMLParser):
    """Collects elements with their attributes, the <title>, and the text of <style> elements."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.title = ""
        self.styles: list[str] = []
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        if tag in ("title", "style"):
            self._in = tag

    def handle_startendtag(self, tag, attrs):  # type: ignore[no-untyped-def]
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        if tag == self._in:
            self._in = None

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if self._in == "title":
            self.title += data
        elif self._in == "style":
            self.styles.append(data)

    def tags(self, name: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == name]


URL_ATTRS = {"src", "href", "xlink:href", "srcset", "action", "formaction", "poster", "data", "background",
             "manifest", "ping", "codebase", "cite", "longdesc"}


def external_references(dom: Dom) -> list[str]:
    """Every reference that would make the browser fetch something: attributes and CSS url()."""
    found = []
    for tag, attrs in dom.elements:
        for name, value in attrs.items():
            v = value.strip()
            if name in URL_ATTRS and v and not (v.startswith("#") or v.startswith("data:image/png;base64,")):
                found.append(f"<{tag} {name}={v[:60]!r}>")
            if name == "style":
                found += [f"<{tag} style url({u})>" for u in _css_urls(v)]
    for css in dom.styles:
        found += [f"<style> url({u})" for u in _css_urls(css)]
        if "@import" in css:
            found.append("<style> @import")
    for tag in ("script", "link", "iframe", "object", "embed", "base", "frame", "audio", "video", "source"):
        found += [f"<{tag}>" for _ in dom.tags(tag)]
    refresh = [a for a in dom.tags("meta") if a.get("http-equiv", "").lower() == "refresh"]
    found += ["<meta refresh>" for _ in refresh]
    return found


def _css_urls(css: str) -> list[str]:
    return [u for u in re.findall(r"url\(\s*['\"]?([^'\")]*)", css, flags=re.I) if not u.startswith("#")]


def decoded_images(dom: Dom):  # type: ignore[no-untyped-def]
    from PIL import Image

    out = []
    for attrs in dom.tags("img"):
        src = attrs.get("src", "")
        assert src.startswith("data:image/png;base64,"), src[:40]
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)))
        image.load()
        out.append((attrs, image))
    return out


# -- renderer tests (no browser) --------------------------------------------------------------------
@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("realistic")
    record = realistic_record(tmp)
    start = time.perf_counter()
    path = html.write_html(record, tmp / "reports" / "robustcheck.html")
    return record, path, path.read_text(encoding="utf-8"), time.perf_counter() - start


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    path = html.write_html(hostile_record(tmp), tmp / "reports" / "robustcheck.html")
    return path, path.read_text(encoding="utf-8")


def test_report_is_one_self_contained_file(realistic):
    record, path, text, seconds = realistic
    dom = Dom(text)
    assert external_references(dom) == []
    assert [p.name for p in path.parent.iterdir() if p.suffix == ".html"] == ["robustcheck.html"]
    csp = next(a["content"] for a in dom.tags("meta") if a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "img-src data:" in csp and "script-src" not in csp
    assert "http://" not in text and "https://" not in text  # not even a namespace URL in the inline SVG
    assert seconds < 30


def test_report_content(realistic):
    record, _, text, _ = realistic
    dom = Dom(text)
    assert dom.title == "robustcheck report — FAILED"
    summary = dom.tags("table")[0]
    assert summary.get("class") == "summary"
    for model in record.models:
        assert f">{model.name}</a>" in text  # summary row linking to the model's section
    ids = [a["id"] for _, a in dom.elements if "id" in a]
    assert len(ids) == len(set(ids)), "duplicate ids (charts share the page)"
    for anchor in [a["href"][1:] for a in dom.tags("a") if a.get("href", "").startswith("#")]:
        assert anchor in ids
    # badges, findings with evidence and remedy, baseline comparison, config, hyper-parameters
    assert text.count('class="badge failed big"') == 3  # overall + two distilled models
    assert 'class="finding error"' in text and "Remedy." in text and "zero_gradient_fraction" in text
    assert "Baseline comparison" in text and "REGRESSED" in text and "−7.8 pt" not in text and "-7.8 pt" in text
    assert "binary_search_steps" in text and "&#34;min_clean_accuracy&#34;: 0.98" in text
    assert "Needs attention" in text and "vanishing-softmax-gradients" in text
    # charts: robustness curves and histograms for each model, inline SVG
    assert text.count('aria-label="Robust accuracy against epsilon for each attack"') == 3
    assert text.count('aria-label="Histogram of the minimal distortion found per sample"') == 3
    # the gallery: 8 counterexamples per model, three PNG panels each, upscaled from 28x28
    pics = decoded_images(dom)
    assert len(pics) == 3 * sum(len(m.counterexamples) for m in record.models) == 72
    for attrs, image in pics:
        assert image.format == "PNG" and image.size == (112, 112)
        assert (int(attrs["width"]), int(attrs["height"])) == image.size
    first = record.models[0].counterexamples[0]
    assert f"{first.distances['l2']:.4g}" in text
    assert "8 of 8 shown" in text


def test_gallery_shows_smallest_distortion_first(realistic):
    record, _, text, _ = realistic
    model = record.models[0]
    ranked = sorted(model.counterexamples, key=lambda c: c.distances["l2"])
    order = [f"sample {c.sample_index} (dataset row" for c in ranked]
    section = text.split(f'id="model-0-{model.name}"', 1)[1].split('class="card model"', 1)[0]
    positions = [section.index(o) for o in order]
    assert positions == sorted(positions)


def test_one_card_per_adversarial_example(tmp_path):
    """The same example found for two properties is pictured once, naming both."""
    record = realistic_record(tmp_path)
    first = record.models[0].counterexamples[0]
    record.models[0].counterexamples.append(dataclasses.replace(first, property="robust[cw-l2@0.25]"))
    text = html.render_html(record)
    assert len(Dom(text).tags("img")) == 72
    assert "robust-accuracy[cw-l2@1], robust[cw-l2@0.25]" in text
    assert "(9 of 9 shown" in text


def test_model_text_is_escaped(hostile):
    _, text = hostile
    dom = Dom(text)
    assert dom.tags("script") == []
    assert not [a for a in dom.tags("img") if a.get("src") == "x" or "onerror" in a]
    assert not [a for _, a in dom.elements if any(k.startswith("on") for k in a)]
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=" in text
    assert "</style><style>" not in text
    assert external_references(dom) == []  # the https URL in the metadata stays text


def test_gallery_is_capped_and_the_report_stays_bounded(tmp_path):
    models, per_model = 10, 40
    record = large_record(tmp_path, models=models, counterexamples=per_model)
    start = time.perf_counter()
    text = html.render_html(record, base_dir=tmp_path / "reports")
    seconds = time.perf_counter() - start
    dom = Dom(text)
    shown = len(dom.tags("img")) // 3
    assert shown == min(models * html.GALLERY_PER_MODEL, html.GALLERY_TOTAL)
    assert text.count("more counterexamples not shown") == models
    assert "at most 12 per model" in text and "at most 60 in all" in text
    assert len(text.encode()) < 60_000 + models * 110_000, len(text)  # about 70 kB of charts and tables per model
    assert seconds < 60


def test_missing_or_damaged_counterexample_files_do_not_break_the_report(tmp_path):
    record = realistic_record(tmp_path)
    ces = record.models[0].counterexamples
    Path(ces[0].npz).unlink()
    Path(ces[1].npz).write_bytes(b"not a zip")
    ces[2].npz = None
    text = html.render_html(record)
    assert "not found" in text and "cannot be drawn" in text and "no .npz file was saved" in text
    assert len(Dom(text).tags("img")) == 3 * (24 - 3)


def test_relative_npz_paths_are_found_next_to_the_report(tmp_path):
    record = realistic_record(tmp_path)
    report_dir = tmp_path / "reports"
    for m in record.models:
        for c in m.counterexamples:
            c.npz = os.path.relpath(c.npz, report_dir)
    out = html.write_html(record, report_dir / "robustcheck.html")
    assert len(Dom(out.read_text()).tags("img")) == 72


def test_degenerate_records_render(tmp_path):
    base = realistic_record(tmp_path)
    broken = ModelRecord(name="broken", file="models/broken.onnx", error="broken.onnx: not an ONNX model (protobuf)")
    empty_attack = ModelRecord(name="odd", file="odd.onnx", attacks=[AttackRecord(
        "cw-l2", "l2", {}, 3, 0.0, 0.1, 0, min_distances=[None, None, None], curve=[])])
    text = html.render_html(RunRecord(run=base.run, models=[broken, empty_attack]))
    assert "This model could not be tested." in text and "not an ONNX model (protobuf)" in text
    assert "ERROR" in text
    assert "No model was tested" in html.render_html(RunRecord(run=base.run))


def test_counterexample_pictures_handle_layouts_and_ranges():
    np = pytest.importorskip("numpy")
    from PIL import Image

    rng = np.random.default_rng(0)
    cases = [((1, 28, 28), "NCHW", (0, 1), (112, 112)), ((28, 28, 1), "NHWC", (0, 1), (112, 112)),
             ((3, 32, 32), "NCHW", (0, 255), (96, 96)), ((32, 32, 3), "NHWC", (-1, 1), (96, 96)),
             ((784,), None, (0, 1), (112, 112)), ((8,), None, (0, 1), (112, 14)),
             ((3, 300, 200), "NCHW", (0, 1), (107, 160))]
    for shape, layout, box, size in cases:
        lo, hi = box
        x = rng.uniform(lo, hi, size=shape).astype(np.float32)
        adv = np.clip(x + 0.05 * (hi - lo) * rng.standard_normal(shape), lo, hi).astype(np.float32)
        pics = images.counterexample_pictures(x, adv, layout, box)
        for png in (pics.original, pics.perturbation, pics.adversarial):
            im = Image.open(io.BytesIO(png))
            assert im.size == size, (shape, layout, im.size)
        assert pics.amplification and pics.amplification > 1
    x = np.zeros((1, 4, 4), np.float32)
    assert images.counterexample_pictures(x, x, "NCHW", (0, 1)).amplification is None  # no perturbation, no division


def test_counterexample_png_strip(tmp_path):
    np = pytest.importorskip("numpy")
    from PIL import Image

    x = np.zeros((1, 28, 28), np.float32)
    x[0, 10:18, 12:15] = 1.0
    adv = x.copy()
    adv[0, 5, 5] = 0.3
    path = images.write_counterexample_png(tmp_path / "ce.png", x, adv, "NCHW", (0.0, 1.0))
    im = Image.open(path)
    assert im.height == 112 and im.width == 3 * 112 + 2 * 7
    gray = np.asarray(im.convert("L"))
    assert gray[20 * 4 + 1, 112 + 7 + 20 * 4 + 1] == 128  # the perturbation panel is mid-grey where nothing changed
    assert gray[5 * 4 + 1, 112 + 7 + 5 * 4 + 1] == 255  # and white where the largest change is


def test_charts_are_clean_inline_svg():
    attack = AttackRecord("cw-l2$x", "l2", {}, 4, 0.75, 1.0, 0, min_distances=[0.5, 1.0, None, 1.5],
                          curve=[CurvePoint(0.0, 1.0), CurvePoint(0.6, 0.75), CurvePoint(1.2, 0.5),
                                 CurvePoint(1.6, 0.25)])
    pgd = AttackRecord("pgd-linf", "linf", {}, 4, 0.5, 1.0, 0, epsilon=0.3, min_distances=[0.3, None, 0.28, None],
                       curve=[CurvePoint(0.0, 1.0), CurvePoint(0.3, 0.5)])
    for svg in (charts.robustness_curves_svg([attack, pgd], epsilons=[("l2", 1.0)], id_prefix="t1"),
                charts.distortion_histograms_svg([attack, pgd], id_prefix="t2")):
        assert svg is not None and svg.startswith("<svg ") and svg.endswith("</svg>")
        assert "http" not in svg and "xmlns" not in svg and "<style" not in svg and "<!DOCTYPE" not in svg
        assert "cw-l2$x" in svg  # a dollar sign is text, not mathtext
        ids = re.findall(r'\bid="([^"]+)"', svg)
        assert all(i.startswith(("t1-", "t2-")) for i in ids)
        for ref in re.findall(r'(?:href="#|url\(#)([^")]+)', svg):
            assert ref in ids
    assert charts.robustness_curves_svg([]) is None
    assert charts.distortion_histograms_svg([AttackRecord("a", "l2", {}, 1, 0.0, 0.0, 0, min_distances=[None])]) is None
    with pytest.raises(ValueError, match="active content"):
        charts.clean_svg('<svg viewBox="0 0 1 1"><script>alert(1)</script></svg>', "x")


def test_renderer_modules_import_light():
    code = ("import sys, robustcheck.report, robustcheck.report.html, robustcheck.report.images, "
            "robustcheck.report.charts, robustcheck.report.json_report, robustcheck.report.console, "
            "robustcheck.report.gallery, robustcheck.report.terminal; "
            "print(sorted(m for m in ('matplotlib', 'jinja2', 'PIL', 'numpy', 'jsonschema', 'rich', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_drawing_a_counterexample_does_not_load_torch(tmp_path):
    # The channel axis comes from metrics.channel_axis, which must stay usable without torch.
    code = ("import sys, numpy as np; from robustcheck.report.images import pictures_from_npz; "
            f"p = {str(tmp_path / 'c.npz')!r}; x = np.zeros((1, 5, 6, 3), np.float32); "
            "np.savez(p, x=x, x_adv=x + 0.5, layout='NHWC'); pics = pictures_from_npz(p); "
            "print(pics.width, pics.height, 'torch' in sys.modules)")
    out = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    width, height, torch_loaded = out.split()
    assert torch_loaded == "False" and int(width) > int(height)  # a 6-wide, 5-high picture, scaled alike


# -- in a real browser ---------------------------------------------------------------------------------
def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


CHROMIUM = _chromium()
browser = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (CI installs Debian's chromium)")


def open_in_chromium(page: Path, work: Path, *, screenshot: Path | None = None) -> str:
    """Load `page` in headless Chromium; return the DOM after load (and write a screenshot)."""
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={work / 'profile'}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}", "--dump-dom"]
    if screenshot is not None:
        args.append(f"--screenshot={screenshot}")
    proc = subprocess.run([*args, page.resolve().as_uri()], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "<html" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


def save_screenshot(shot: Path, target: Path) -> None:
    """Keep the README's picture small: 256 colours, no dithering (text and charts stay crisp)."""
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(shot) as image:
        palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        palette.save(target, optimize=True)


@pytest.fixture(scope="module")
def realistic_in_browser(realistic, tmp_path_factory):
    record, path, _, _ = realistic
    work = tmp_path_factory.mktemp("chromium-realistic")
    shot = work / "report.png"
    dom = open_in_chromium(path, work, screenshot=shot)
    if os.environ.get("ROBUSTCHECK_SAVE_SCREENSHOT") == "1":
        save_screenshot(shot, ROOT / "docs" / "report.png")
    return record, Dom(dom), shot


@browser
@pytest.mark.browser
def test_browser_screenshot_is_not_blank(realistic_in_browser):
    from PIL import Image, ImageStat

    _, _, shot = realistic_in_browser
    image = Image.open(shot).convert("L")
    assert image.size == WINDOW
    assert ImageStat.Stat(image).var[0] > 500  # a blank or single-colour page has (almost) none
    histogram = image.histogram()
    assert sum(1 for n in histogram if n > 50) > 40  # text, badges, pictures: many grey levels
    top = image.crop((0, 0, WINDOW[0], 100))
    assert ImageStat.Stat(top).mean[0] < 100  # the dark header band rendered with its styles


@browser
@pytest.mark.browser
def test_browser_renders_summary_and_counterexamples(realistic_in_browser):
    record, dom, _ = realistic_in_browser
    assert dom.title == "robustcheck report — FAILED"
    assert [a for a in dom.tags("table") if a.get("class") == "summary"]
    pics = decoded_images(dom)
    assert len(pics) == 72
    attrs, image = pics[0]
    assert image.size == (112, 112) and attrs["alt"].startswith("original input")
    assert len(dom.tags("svg")) == 6


@browser
@pytest.mark.browser
def test_browser_dom_has_no_external_url(realistic_in_browser):
    _, dom, _ = realistic_in_browser
    assert external_references(dom) == []


@browser
@pytest.mark.browser
@pytest.mark.parametrize("without_csp", [False, True], ids=["as-written", "csp-removed"])
def test_browser_does_not_run_injected_markup(hostile, tmp_path, without_csp):
    """The CSP forbids scripts; escaping alone must stop them too, so check with the CSP removed as well."""
    path, text = hostile
    if without_csp:
        text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
        assert "Content-Security-Policy" not in text
        path = tmp_path / "no-csp.html"
        path.write_text(text, encoding="utf-8")
    dom = Dom(open_in_chromium(path, tmp_path))
    assert dom.title == "robustcheck report — FAILED"  # an executed script would have set 'pwned'
    assert dom.tags("script") == []
    assert not [a for a in dom.tags("img") if a.get("src") == "x"]
    assert not [a for _, a in dom.elements if any(k.startswith("on") for k in a)]
    assert external_references(dom) == []
    assert HOSTILE and SCRIPT and IMG  # the fixture's payloads (see report_fixtures)
