// The training chart: hit@1, MRR and quality per iteration as three
// polylines on a fixed 0..1 axis, drawn as SVG (which an accessibility
// checker can read, unlike a canvas); role=img with a caption, and the page
// shows a table of the same numbers beside it.
import { h, svg } from './dom.js';

export const SERIES = [
  ['hit_at_1', 'hit@1', 's-hit'],
  ['mrr', 'MRR', 's-mrr'],
  ['quality_score', 'quality', 's-quality'],
];

const W = 600;
const H = 260;
const PAD = { l: 44, r: 16, t: 14, b: 36 };

// points: [{iteration, metrics: {hit_at_1, mrr, quality_score}}], in order.
// Returns a <figure> holding the captioned chart and its legend.
export function metricsChart(points, captionId) {
  const n = points.length;
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const x = (i) => PAD.l + (n <= 1 ? iw / 2 : (i * iw) / (n - 1));
  const y = (v) => PAD.t + ih - Math.max(0, Math.min(1, v)) * ih;

  const chart = svg('svg', {
    class: 'chart',
    viewBox: `0 0 ${W} ${H}`,
    role: 'img',
    'aria-labelledby': captionId,
    preserveAspectRatio: 'xMidYMid meet',
  });
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(
      svg('line', { class: 'grid-line', x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }),
      svg('text', { x: PAD.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, document.createTextNode(v.toFixed(2))));
  }
  chart.append(svg('line', { class: 'axis', x1: PAD.l, x2: PAD.l, y1: PAD.t, y2: PAD.t + ih }));
  chart.append(svg('line', { class: 'axis', x1: PAD.l, x2: W - PAD.r, y1: PAD.t + ih, y2: PAD.t + ih }));
  // Iteration numbers: all of them when few, else about ten.
  const step = Math.max(1, Math.ceil(n / 10));
  points.forEach((p, i) => {
    if (i % step === 0 || i === n - 1)
      chart.append(svg('text', { x: x(i), y: H - PAD.b + 18, 'text-anchor': 'middle' },
        document.createTextNode(String(p.iteration))));
  });
  chart.append(svg('text', { x: PAD.l + iw / 2, y: H - 4, 'text-anchor': 'middle' },
    document.createTextNode('iteration')));
  for (const [key, label, cls] of SERIES) {
    const pts = points
      .map((p, i) => (p.metrics && typeof p.metrics[key] === 'number' ? `${x(i).toFixed(1)},${y(p.metrics[key]).toFixed(1)}` : null))
      .filter(Boolean);
    chart.append(svg('polyline', { class: cls, points: pts.join(' '), 'data-metric': label }));
    points.forEach((p, i) => {
      const v = p.metrics && p.metrics[key];
      if (typeof v !== 'number') return;
      chart.append(svg('circle', { class: `dot ${cls}`, cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 3.5 },
        svg('title', {}, document.createTextNode(`${label} at iteration ${p.iteration}: ${v.toFixed(3)}`))));
    });
  }
  const legend = h('ul', { class: 'legend' }, SERIES.map(([, label, cls]) =>
    h('li', {}, h('span', { class: `swatch ${cls}`, 'aria-hidden': 'true' }), label)));
  return h('figure', {}, h('figcaption', { id: captionId }, 'Training metrics per iteration'), chart, legend);
}
