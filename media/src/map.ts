/**
 * The 2-D embedding map on a canvas: points coloured by the method's picks and the manual reviews,
 * by k-means cluster or by caption kind. Dragging a rectangle filters the grid to the points inside;
 * a click picks the nearest point.
 */
import type { MapData } from '../../extension/protocol';
import { el, themeColor } from './dom';

export type MapColouring = 'selection' | 'cluster' | 'caption';

export interface MapOptions {
  onBrush(ids: number[]): void;
  onPick(id: number): void;
}

const PAD = 8;

export class EmbeddingMapView {
  readonly element: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private data: MapData | undefined;
  private colouring: MapColouring = 'selection';
  private brush: { x0: number; y0: number; x1: number; y1: number } | undefined;
  private readonly legend: HTMLElement;

  constructor(private readonly options: MapOptions) {
    this.element = el('div', 'map');
    this.canvas = el('canvas', 'map-canvas');
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', '2-D map of the image embeddings');
    this.legend = el('div', 'legend');
    this.element.append(this.canvas, this.legend);
    this.canvas.addEventListener('pointerdown', (e) => this.startBrush(e));
    new ResizeObserver(() => this.draw()).observe(this.canvas);
  }

  set(data: MapData): void {
    this.data = data;
    this.draw();
  }

  colourBy(mode: MapColouring): void {
    this.colouring = mode;
    this.draw();
  }

  private palette(): string[] {
    const names = ['blue', 'orange', 'green', 'purple', 'red', 'yellow'];
    const base = names.map((n, i) =>
      themeColor(`charts-${n}`, ['#3794ff', '#d18616', '#89d185', '#b180d7', '#f14c4c', '#cca700'][i]!),
    );
    return [...base, '#4fc1ff', '#c586c0', '#9cdcfe', '#ce9178'];
  }

  private colours(): { of: (i: number) => string; legend: Array<[string, string]> } {
    const d = this.data!;
    const p = this.palette();
    const muted = themeColor('descriptionForeground', '#888888');
    if (this.colouring === 'selection') {
      const byState = [muted, p[0]!, p[2]!, p[4]!];
      return {
        of: (i) => byState[d.state[i]!]!,
        legend: [
          ['not picked', byState[0]!],
          ['picked', byState[1]!],
          ['accepted', byState[2]!],
          ['rejected', byState[3]!],
        ],
      };
    }
    if (this.colouring === 'cluster') {
      const k = Math.max(...d.cluster) + 1;
      return {
        of: (i) => p[d.cluster[i]! % p.length]!,
        legend: Array.from(
          { length: k },
          (_, c) => [`cluster ${c + 1}`, p[c % p.length]!] as [string, string],
        ),
      };
    }
    const kinds = [...new Set(d.captionKind.map((k) => k ?? 'unknown'))].sort();
    return {
      of: (i) => p[kinds.indexOf(d.captionKind[i] ?? 'unknown') % p.length]!,
      legend: kinds.map((k, c) => [k, p[c % p.length]!] as [string, string]),
    };
  }

  private toScreen(i: number, w: number, h: number): [number, number] {
    const d = this.data!;
    return [PAD + d.x[i]! * (w - 2 * PAD), PAD + (1 - d.y[i]!) * (h - 2 * PAD)];
  }

  draw(): void {
    const ctx = this.canvas.getContext('2d');
    if (!ctx || !this.data) return;
    const ratio = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth || 300;
    const h = this.canvas.clientHeight || 300;
    this.canvas.width = Math.round(w * ratio);
    this.canvas.height = Math.round(h * ratio);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const { of, legend } = this.colours();
    const n = this.data.ids.length;
    const radius = n > 5000 ? 1.2 : 2;
    // Picked and reviewed points last, so they stay visible on top of the crowd.
    const order = Array.from({ length: n }, (_, i) => i).sort(
      (a, b) => this.data!.state[a]! - this.data!.state[b]!,
    );
    for (const i of order) {
      const [x, y] = this.toScreen(i, w, h);
      ctx.fillStyle = of(i);
      ctx.fillRect(x - radius, y - radius, 2 * radius, 2 * radius);
    }
    if (this.brush) {
      const b = this.brush;
      ctx.strokeStyle = themeColor('focusBorder', '#0078d4');
      ctx.setLineDash([4, 3]);
      ctx.strokeRect(
        Math.min(b.x0, b.x1),
        Math.min(b.y0, b.y1),
        Math.abs(b.x1 - b.x0),
        Math.abs(b.y1 - b.y0),
      );
      ctx.setLineDash([]);
    }
    this.legend.textContent = '';
    for (const [label, colour] of legend) {
      const item = el('span', 'legend-item');
      const swatch = el('span', 'swatch');
      swatch.style.background = colour;
      item.append(swatch, document.createTextNode(label));
      this.legend.append(item);
    }
    this.legend.append(
      el(
        'span',
        'legend-note',
        `${n.toLocaleString()} of ${this.data.total.toLocaleString()} samples · drag to filter the grid`,
      ),
    );
  }

  private startBrush(e: PointerEvent): void {
    if (!this.data) return;
    const rect = this.canvas.getBoundingClientRect();
    const at = (ev: PointerEvent) => [ev.clientX - rect.left, ev.clientY - rect.top] as const;
    const [x0, y0] = at(e);
    this.brush = { x0, y0, x1: x0, y1: y0 };
    this.canvas.setPointerCapture(e.pointerId);
    const move = (ev: PointerEvent) => {
      const [x1, y1] = at(ev);
      this.brush = { x0, y0, x1, y1 };
      this.draw();
    };
    const up = (ev: PointerEvent) => {
      this.canvas.removeEventListener('pointermove', move);
      this.canvas.removeEventListener('pointerup', up);
      const [x1, y1] = at(ev);
      this.brush = undefined;
      if (Math.hypot(x1 - x0, y1 - y0) < 4) this.pick(x1, y1, rect.width, rect.height);
      else this.select(x0, y0, x1, y1, rect.width, rect.height);
      this.draw();
    };
    this.canvas.addEventListener('pointermove', move);
    this.canvas.addEventListener('pointerup', up);
  }

  private pick(x: number, y: number, w: number, h: number): void {
    let best = -1;
    let bestDistance = 8;
    for (let i = 0; i < this.data!.ids.length; i++) {
      const [px, py] = this.toScreen(i, w, h);
      const d = Math.hypot(px - x, py - y);
      if (d < bestDistance) [best, bestDistance] = [i, d];
    }
    if (best >= 0) this.options.onPick(this.data!.ids[best]!);
  }

  private select(x0: number, y0: number, x1: number, y1: number, w: number, h: number): void {
    const [lx, hx, ly, hy] = [Math.min(x0, x1), Math.max(x0, x1), Math.min(y0, y1), Math.max(y0, y1)];
    const ids: number[] = [];
    for (let i = 0; i < this.data!.ids.length; i++) {
      const [px, py] = this.toScreen(i, w, h);
      if (px >= lx && px <= hx && py >= ly && py <= hy) ids.push(this.data!.ids[i]!);
    }
    this.options.onBrush(ids);
  }
}
