/** Score histogram as SVG: picked and not-picked counts stacked per bin, in theme chart colours. */
import type { Histogram, ScoreLegend } from '../../extension/protocol';
import { el, svg, themeColor } from './dom';

const W = 320;
const H = 140;
const PAD = { left: 34, right: 6, top: 8, bottom: 22 };

export function renderHistogram(
  target: HTMLElement,
  h: Histogram | null,
  method: string | null,
  score: ScoreLegend | null = null,
): void {
  target.textContent = '';
  if (!h) {
    target.append(el('p', 'empty', method ? `${method} gives no per-sample scores.` : 'No selection shown.'));
    return;
  }
  const picked = themeColor('charts-blue', '#3794ff');
  const rest = themeColor('descriptionForeground', '#888888');
  const bins = h.selected.length;
  const counts = h.selected.map((s, i) => s + h.unselected[i]!);
  const max = Math.max(1, ...counts);
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'histogram' });
  chart.setAttribute('aria-label', `histogram of ${method ?? ''} scores`);
  const bw = (W - PAD.left - PAD.right) / bins;
  const y = (v: number) => PAD.top + (1 - v / max) * (H - PAD.top - PAD.bottom);
  for (let b = 0; b < bins; b++) {
    const x = PAD.left + b * bw;
    const restTop = y(h.unselected[b]!);
    const bar = (top: number, bottom: number, fill: string, label: string) => {
      if (bottom - top <= 0) return;
      const r = svg('rect', { x: x + 0.5, y: top, width: Math.max(0.5, bw - 1), height: bottom - top, fill });
      const title = svg('title');
      title.textContent = label;
      r.append(title);
      chart.append(r);
    };
    const lo = h.lo + ((h.hi - h.lo) * b) / bins;
    const hi = h.lo + ((h.hi - h.lo) * (b + 1)) / bins;
    const range = `${lo.toFixed(3)} – ${hi.toFixed(3)}`;
    bar(restTop, y(0), rest, `${range}: ${h.unselected[b]} not picked`);
    bar(y(h.unselected[b]! + h.selected[b]!), restTop, picked, `${range}: ${h.selected[b]} picked`);
  }
  const fg = themeColor('foreground', '#cccccc');
  const text = (x: number, yy: number, s: string, anchor: string) => {
    const t = svg('text', { x, y: yy, fill: fg, 'font-size': 10, 'text-anchor': anchor });
    t.textContent = s;
    chart.append(t);
  };
  text(PAD.left, H - 6, h.lo.toFixed(3), 'start');
  text(W - PAD.right, H - 6, h.hi.toFixed(3), 'end');
  text(PAD.left - 4, PAD.top + 8, String(max), 'end');
  text(PAD.left - 4, H - PAD.bottom, '0', 'end');
  chart.append(
    svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0), stroke: fg, 'stroke-width': 0.5 }),
  );
  const legend = el('div', 'legend');
  for (const [label, colour] of [
    ['picked', picked],
    ['not picked', rest],
  ] as const) {
    const item = el('span', 'legend-item');
    const swatch = el('span', 'swatch');
    swatch.style.background = colour;
    item.append(swatch, document.createTextNode(label));
    legend.append(item);
  }
  const heading = el(
    'div',
    'chart-title',
    score ? `${score.name} (${score.method})` : `${method ?? ''} score`,
  );
  if (score) heading.title = score.meaning;
  target.append(heading, chart, legend);
}
