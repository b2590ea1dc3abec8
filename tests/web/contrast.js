// WCAG 2.1 AA contrast of what the browser actually paints (computed styles), for tests/web/test_browser.py.
// Text (1.4.3): every visible element with its own text, SVG text, placeholders and field values; the
// colour behind it is its ancestors' backgrounds composited over white. Non-text (1.4.11): the boundary of
// each form control (its border, or its fill when the fill differs from what is behind it), legend
// swatches and chart marks, against what is behind them. (The focus outline: test_browser.py, by Tab.)
() => {
  const parse = (c) => {
    const m = c && c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (t, u) => [0, 1, 2].map((i) => t[i] * t[3] + u[i] * (1 - t[3])).concat([1]);
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const behind = (el) => {
    const layers = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const bg = parse(getComputedStyle(e).backgroundColor);
      if (bg && bg[3] > 0) { layers.push(bg); if (bg[3] >= 1) break; }
    }
    let c = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) c = over(layers[i], c);
    return c;
  };
  const visible = (el) => {
    const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none" && Number(s.opacity) > 0;
  };
  const rgb = (c) => c.slice(0, 3).map(Math.round).join(",");
  const out = [];
  const check = (kind, el, fg, bg, need, text) => {
    if (!fg || fg[3] === 0) return;
    const c = over(fg, bg);
    out.push({ kind, tag: el.tagName.toLowerCase(), cls: String(el.className.baseVal ?? el.className),
      text: (text || "").trim().slice(0, 40), fg: rgb(c), bg: rgb(bg),
      ratio: Math.round(ratio(c, bg) * 100) / 100, need });
  };
  for (const el of document.querySelectorAll("body *")) {
    if (["SCRIPT", "STYLE", "TITLE", "OPTION"].includes(el.tagName) || el.closest(".skip")) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const ph = (el.tagName === "INPUT" || el.tagName === "TEXTAREA") && el.placeholder && !el.value;
    const field = (el.tagName === "INPUT" && el.value && !["hidden", "submit"].includes(el.type)) || el.tagName === "SELECT";
    if (!(own || ph || field) || !visible(el)) continue;
    const s = getComputedStyle(el);
    const svg = el instanceof SVGElement;
    const fg = parse(ph ? getComputedStyle(el, "::placeholder").color : svg ? s.fill : s.color);
    const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const bg = behind(svg ? el.ownerSVGElement.parentElement : el);
    check("text", el, fg, bg, large ? 3 : 4.5, ph ? "placeholder: " + el.placeholder : field ? el.value : el.textContent);
  }
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, button, textarea")) {
    if (!visible(el)) continue;
    const s = getComputedStyle(el), bg = behind(el.parentElement);
    const border = parse(s.borderTopColor), fill = parse(s.backgroundColor);
    const rb = border && Number.parseFloat(s.borderTopWidth) > 0 ? ratio(over(border, bg), bg) : 0;
    const rf = fill ? ratio(over(fill, bg), bg) : 0;
    check("control", el, rb >= rf ? border : fill, bg, 3, el.name || el.textContent);
  }
  for (const el of document.querySelectorAll(".swatch")) check("swatch", el, parse(getComputedStyle(el).backgroundColor), behind(el.parentElement), 3, "");
  for (const el of document.querySelectorAll("svg.chart rect, svg.chart path, svg.chart polyline, svg.chart circle")) {
    const s = getComputedStyle(el), bg = behind(el.ownerSVGElement.parentElement);
    if (s.fill !== "none") check("chart", el, parse(s.fill), bg, 3, "");
    else if (s.stroke !== "none") check("chart", el, parse(s.stroke), bg, 3, "");
  }
  return out;
}
