// Draws docs/draining-timeline.svg: what happens, second by second, when a wsgate pod of the chart stops with its
// default drain (delay 5 s, timeout 30 s, grace period 50 s), and what the reconnections of its 10,000 WebSockets
// look like, spread (333 per second) against all at once. Plain SVG text, no dependency, so that the figure is
// reviewed as a diff like any source; the numbers are the ones docs/draining.md works through.
//
//   node scripts/docs/draining-figure.ts [--check]     (--check: exit 1 when the committed SVG differs)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const OUT = join(import.meta.dirname, '..', '..', 'docs', 'draining-timeline.svg');

/** The chart's defaults (charts/wsgate/values.yaml controller.drain) and the example's connections per pod. */
export const FIGURE = { delay: 5, timeout: 30, closeHandshake: 5, margin: 10, connections: 10_000 } as const;

const W = 960;
const LEFT = 190;
const RIGHT = 30;
const SECONDS = 52;
const x = (s: number): number => LEFT + ((W - LEFT - RIGHT) * s) / SECONDS;
const esc = (t: string): string => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function text(px: number, py: number, t: string, o: { size?: number; anchor?: 'start' | 'middle' | 'end'; weight?: string; fill?: string } = {}): string {
  return `<text x="${px.toFixed(1)}" y="${py}" font-size="${o.size ?? 12}" text-anchor="${o.anchor ?? 'start'}"${o.weight ? ` font-weight="${o.weight}"` : ''} fill="${o.fill ?? '#222'}">${esc(t)}</text>`;
}

function bar(from: number, to: number, y: number, h: number, fill: string, label: string, labelFill = '#fff'): string {
  return [
    `<rect x="${x(from).toFixed(1)}" y="${y}" width="${(x(to) - x(from)).toFixed(1)}" height="${h}" rx="3" fill="${fill}"/>`,
    text((x(from) + x(to)) / 2, y + h / 2 + 4, label, { anchor: 'middle', fill: labelFill, size: 11 }),
  ].join('\n');
}

function marker(s: number, y1: number, y2: number, label: string, anchor: 'start' | 'middle' | 'end' = 'middle', dy = 0): string {
  return [
    `<line x1="${x(s).toFixed(1)}" y1="${y1}" x2="${x(s).toFixed(1)}" y2="${y2}" stroke="#555" stroke-dasharray="3,3"/>`,
    text(x(s) + (anchor === 'start' ? 3 : anchor === 'end' ? -3 : 0), y1 - 4 + dy, label, { anchor, size: 11, fill: '#333' }),
  ].join('\n');
}

export function drawFigure(): string {
  const { delay, timeout, closeHandshake, margin, connections } = FIGURE;
  const drained = delay + timeout;
  const exit = drained + closeHandshake;
  const grace = exit + margin;
  const rate = Math.round(connections / timeout);
  const parts: string[] = [];
  parts.push(text(W / 2, 24, `A wsgate pod stops (chart defaults: drain delay ${delay} s, drain timeout ${timeout} s, grace period ${grace} s)`, { anchor: 'middle', size: 15, weight: 'bold' }));

  // Lanes.
  const lane = (y: number, title: string, sub: string): void => {
    parts.push(text(12, y + 14, title, { weight: 'bold', size: 12 }), text(12, y + 29, sub, { size: 11, fill: '#555' }));
  };
  lane(58, 'Kubernetes', 'endpoints, load balancers');
  parts.push(bar(0, 3, 60, 26, '#8d6e63', ''));
  parts.push(text(x(3) + 6, 77, 'the endpoint is terminating at once; kube-proxy and load balancers let go within seconds', { size: 11, fill: '#5d4037' }));

  lane(106, 'wsgate', '--drain-delay, --drain-timeout');
  parts.push(bar(0, delay, 108, 26, '#f9a825', '', '#222'));
  parts.push(text((x(0) + x(delay)) / 2, 119, 'unready,', { anchor: 'middle', size: 10 }), text((x(0) + x(delay)) / 2, 130, 'accepting', { anchor: 'middle', size: 10 }));
  parts.push(bar(delay, drained, 108, 26, '#1565c0', `listeners closed; one 1001 Going Away every ${(1000 / rate).toFixed(0)} ms (${rate}/s)`));
  parts.push(bar(drained, exit, 108, 26, '#78909c', 'handshakes'));
  parts.push(bar(exit, grace, 108, 26, '#eceff1', 'margin', '#555'));

  // Reconnections per second: spread against all at once.
  const top = 186;
  const bottom = 326;
  const scale = (bottom - top - 20) / (rate * 3);
  lane(top + 30, 'Reconnections', `${connections.toLocaleString('en-US')} clients, per second`);
  parts.push(`<line x1="${x(0)}" y1="${bottom}" x2="${x(SECONDS)}" y2="${bottom}" stroke="#999"/>`);
  const spreadH = rate * scale;
  parts.push(`<rect x="${x(delay).toFixed(1)}" y="${(bottom - spreadH).toFixed(1)}" width="${(x(drained) - x(delay)).toFixed(1)}" height="${spreadH.toFixed(1)}" fill="#1565c0" fill-opacity="0.75"/>`);
  parts.push(text((x(delay) + x(drained)) / 2, bottom - spreadH - 6, `spread: ${rate}/s for ${timeout} s`, { anchor: 'middle', size: 12, fill: '#0d47a1', weight: 'bold' }));
  // All at once: a spike off the scale at the end of a drain without spreading.
  const spikeX = x(delay);
  parts.push(`<rect x="${(spikeX - 5).toFixed(1)}" y="${top}" width="10" height="${bottom - top}" fill="#c62828" fill-opacity="0.85"/>`);
  parts.push(text(spikeX + 10, top + 12, `all at once (--drain-timeout 0): ${connections.toLocaleString('en-US')} within about a second, off this scale (${Math.round(connections / rate)}×)`, { size: 12, fill: '#b71c1c', weight: 'bold' }));

  // Time axis.
  const axisY = 352;
  parts.push(`<line x1="${x(0)}" y1="${axisY}" x2="${x(SECONDS)}" y2="${axisY}" stroke="#333"/>`);
  for (let s = 0; s <= 50; s += 5) {
    parts.push(`<line x1="${x(s).toFixed(1)}" y1="${axisY}" x2="${x(s).toFixed(1)}" y2="${axisY + 5}" stroke="#333"/>`);
    parts.push(text(x(s), axisY + 18, `${s} s`, { anchor: 'middle', size: 11 }));
  }
  parts.push(marker(0, 52, axisY, 'SIGTERM', 'start', 0));
  parts.push(marker(delay, 150, axisY, `+${delay} s listeners close`, 'start', 0));
  parts.push(marker(drained, 150, axisY, `+${drained} s last 1001`, 'end', 0));
  parts.push(marker(exit, 150, axisY, `+${exit} s cut, exit 0`, 'start', 0));
  parts.push(marker(grace, 56, axisY, `+${grace} s SIGKILL (not reached)`, 'end', 0));

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="390" viewBox="0 0 ${W} 390" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
    '<!-- Generated by scripts/docs/draining-figure.ts; edit that script, not this file. -->',
    `<rect width="${W}" height="390" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

if (import.meta.main) {
  const svg = drawFigure();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(OUT, 'utf8');
    } catch {
      // Missing: differs.
    }
    if (current !== svg) {
      process.stderr.write(`${OUT} differs from what scripts/docs/draining-figure.ts draws: run it\n`);
      process.exitCode = 1;
    }
  } else {
    writeFileSync(OUT, svg);
    process.stderr.write(`wrote ${OUT}\n`);
  }
}
