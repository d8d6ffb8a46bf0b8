// A uPlot chart as a component.
import { useEffect, useRef } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import uPlot from 'uplot';
import { html } from './ui.js';

/** A bar chart of values over time (x: Unix seconds): counts per bucket by default. */
export function CountsPlot({
  label,
  x,
  y,
  description,
  unit = 'count',
  ordinal = false,
  more = [],
}: {
  label: string;
  x: number[];
  y: number[];
  description: string;
  unit?: string;
  /** x is a sequence number (1, 2, …), not a time. */
  ordinal?: boolean;
  /** Further series over the same x, drawn as lines, with a legend. */
  more?: { label: string; y: number[]; stroke: string }[];
}): ComponentChildren {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (el === null) return;
    const width = Math.max(260, Math.min(900, el.clientWidth || 600));
    const plot = new uPlot(
      {
        width,
        height: 180,
        series: [
          {},
          { label, stroke: '#1d5fb4', fill: 'rgba(29,95,180,0.25)', paths: uPlot.paths.bars!() },
          ...more.map((m) => ({ label: m.label, stroke: m.stroke, width: 2 })),
        ],
        axes: [
          ordinal ? { label: 'transaction, oldest first', incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500] } : {},
          { label: unit },
        ],
        ...(ordinal
          ? {
              scales: {
                x: {
                  time: false,
                  range: (_u: uPlot, min: number, max: number): [number, number] => [min - 0.5, max + 0.5],
                },
              },
            }
          : {}),
        legend: { show: more.length > 0 },
      },
      [x, y, ...more.map((m) => m.y)],
      el,
    );
    return () => plot.destroy();
  }, [x.join(','), y.join(','), more.map((m) => m.y.join(',')).join(';'), label, unit, ordinal]);
  return html`<figure class="plot" data-plot=${label}>
    <div ref=${ref} role="img" aria-label=${description}></div>
    <figcaption>${description}</figcaption>
  </figure>`;
}

/** Counts of ISO timestamps per hour, for the last `hours` hours. */
export function perHour(times: readonly string[], hours = 24): { x: number[]; y: number[] } {
  const now = Math.floor(Date.now() / 3_600_000);
  const x: number[] = [];
  const y: number[] = [];
  for (let h = now - hours + 1; h <= now; h++) {
    x.push(h * 3600);
    y.push(0);
  }
  for (const t of times) {
    const h = Math.floor(Date.parse(t) / 3_600_000);
    const i = h - (now - hours + 1);
    if (i >= 0 && i < hours) y[i] = (y[i] ?? 0) + 1;
  }
  return { x, y };
}

/**
 * How long each transaction took, from its journal record (created → last update: committed,
 * rolled back, or confirmed for commit-confirmed ones), oldest first, numbered from 1; pending
 * ones are left out.
 */
export function durations(records: readonly { createdAt: string; updatedAt: string; status: string }[]): {
  x: number[];
  y: number[];
} {
  const done = records
    .filter((r) => r.status !== 'pending-confirm' && r.status !== 'applying' && r.status !== 'verifying')
    .map((r) => ({
      at: Date.parse(r.createdAt),
      s: (Date.parse(r.updatedAt) - Date.parse(r.createdAt)) / 1000,
    }))
    .filter((d) => Number.isFinite(d.at) && Number.isFinite(d.s) && d.s >= 0)
    .sort((a, b) => a.at - b.at);
  return { x: done.map((_d, i) => i + 1), y: done.map((d) => d.s) };
}
