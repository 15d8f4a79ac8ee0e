/** Charts alive on the current page; the router releases them on every navigation. */
const live = new Set<{ dispose(): void }>();

export function trackChart(c: { dispose(): void }): void {
  live.add(c);
}

export function disposeCharts(): void {
  for (const c of live) c.dispose();
  live.clear();
}

/** ECharts is loaded on first use (its own chunk), so login and search pages never download it. */
export const loadCharts = () => import('./charts.js');
