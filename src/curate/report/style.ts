/** The report's one stylesheet (inlined; the page's CSP allows exactly this text by its hash). */
export const CSS = `
:root {
  color-scheme: light dark;
  --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --border: #d1d9e0; --subtle: #f6f8fa;
  --accent: #0969da; --best: #dafbe1; --grid: #e3e3e3; --sel: #1a7f37; --rej: #cf222e;
  --warn-bg: #fff8c5; --warn-border: #d4a72c; --warn-fg: #3b2300;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --border: #3d444d; --subtle: #151b23;
    --accent: #4493f8; --best: #12361f; --grid: #2a313a; --sel: #3fb950; --rej: #f85149;
    --warn-bg: #272115; --warn-border: #9e6a03; --warn-fg: #f0d58a;
  }
}
* { box-sizing: border-box; }
html { background: var(--bg); }
body {
  margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
header, nav, main, footer { max-width: 1240px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--border); }
h3 { font-size: 16px; margin: 20px 0 8px; }
h4 { font-size: 13px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 12px; }
.sub { color: var(--muted); margin: 0; }
nav { margin-top: 12px; display: flex; flex-wrap: wrap; gap: 4px 16px; }
nav a { color: var(--accent); text-decoration: none; }
nav a:hover { text-decoration: underline; }
.banner { margin: 16px 0 0; padding: 12px 16px; border-radius: 8px; border: 1px solid var(--warn-border); background: var(--warn-bg); color: var(--warn-fg); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 12px; margin: 16px 0 0; }
.card { border: 1px solid var(--border); border-radius: 8px; padding: 10px 14px; background: var(--subtle); min-width: 0; }
.card dt { color: var(--muted); font-size: 12px; }
.card dd { margin: 2px 0 0; font-size: 16px; font-weight: 600; overflow-wrap: anywhere; }
.card dd small { display: block; font-size: 12px; font-weight: 400; color: var(--muted); }
.table-wrap { overflow-x: auto; border: 1px solid var(--border); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 12px; text-align: right; white-space: nowrap; border-bottom: 1px solid var(--border); }
th { background: var(--subtle); font-weight: 600; }
th.text, td.text { text-align: left; }
tbody tr:last-child td { border-bottom: 0; }
tbody tr.group-start td { border-top: 2px solid var(--border); }
tbody tr:hover td { background: var(--subtle); }
td.best { font-weight: 700; background: var(--best); }
td.near { font-style: italic; }
td.na { color: var(--muted); }
.swatch { vertical-align: middle; margin-right: 6px; }
.note { color: var(--muted); font-size: 12px; margin: 8px 0 0; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
figure { margin: 0; }
figure.plot { border: 1px solid var(--border); border-radius: 8px; padding: 12px; min-width: 0; }
figure.plot svg { display: block; max-width: 100%; height: auto; }
figure.plot svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; fill: var(--fg); }
figure.plot svg .role-axis-label text, figure.plot svg .role-legend-label text { fill: var(--muted); }
figure.plot svg .role-axis-domain line, figure.plot svg .role-axis-tick line { stroke: var(--muted); }
figure.plot svg .role-axis-grid line { stroke: var(--grid); }
figure.plot svg .mark-symbol.role-mark path { stroke: var(--bg); }
figure.plot figcaption { color: var(--muted); font-size: 12px; margin-top: 6px; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
@media (max-width: 820px) { .pair { grid-template-columns: 1fr; } .plots { grid-template-columns: 1fr; } }
.side { border: 1px solid var(--border); border-radius: 8px; padding: 10px 12px; min-width: 0; }
.side.selected { border-top: 4px solid var(--sel); }
.side.rejected { border-top: 4px solid var(--rej); }
.thumbs { display: grid; grid-template-columns: repeat(auto-fill, minmax(112px, 1fr)); gap: 10px; }
.sample { min-width: 0; }
.sample img, .sample .noimg { display: block; width: 96px; height: 96px; object-fit: contain; border-radius: 4px; background: var(--subtle); border: 1px solid var(--border); }
.sample .noimg { display: flex; align-items: center; justify-content: center; text-align: center; font-size: 11px; color: var(--muted); padding: 4px; }
.sample figcaption { font-size: 12px; margin-top: 4px; overflow-wrap: anywhere; }
.sample .caption { display: block; }
.sample .key { display: block; color: var(--muted); font-size: 11px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.sample .meta { display: block; color: var(--muted); font-size: 11px; }
.empty { color: var(--muted); font-style: italic; }
details { border: 1px solid var(--border); border-radius: 8px; padding: 8px 12px; margin: 8px 0; }
details > summary { cursor: pointer; }
details details { background: var(--subtle); }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 10px 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; overflow-wrap: anywhere; }
pre { background: var(--bg); border: 1px solid var(--border); border-radius: 6px; padding: 8px 10px; overflow-x: auto; margin: 8px 0 4px; }
footer { color: var(--muted); font-size: 12px; padding-top: 24px; padding-bottom: 32px; }
`;
