import type { Manifest } from './generate.js';

/**
 * The scenario's detector config file (schema: services/detector/src/detector.config.ts): every
 * client's IANA zone (exact ids, so the baseline job's hour-of-week profile uses it too), business
 * hours with the company holiday for office clients, and otherwise the detector's defaults. The
 * business hours are wider (07:00-20:00) than the generated office habits (08:00-19:30): they say
 * what the company allows, not what each person does.
 */
export function scenarioDetectorConfig(m: Manifest): Record<string, unknown> {
  const clients: Record<string, unknown> = {};
  for (const c of m.clients) {
    const office = c.archetype === 'office' || c.archetype === 'new_office';
    clients[c.id] = {
      timeZone: c.tz,
      ...(office
        ? {
            businessHours: {
              days: [1, 2, 3, 4, 5],
              start: '07:00',
              end: '20:00',
              holidays: [m.holiday.date],
            },
          }
        : {}),
    };
  }
  // The evaluation week is produced in a minute, so the periodic runner has a week of windows to catch
  // up on at once: larger slices per tick than the live default, still small enough that progress is
  // saved every few seconds (200 took 30+ minutes of catch-up on a loaded 2-core machine once eleven
  // periodic detectors ran).
  // The wall-clock watchdog is off: weeks of traffic are ingested in minutes and then stop, which is
  // exactly what it pages for (and the run's ingester group is not the one it watches).
  return { timeZone: 'UTC', periodic: { maxWindowsPerTick: 2000 }, watchdog: { enabled: false }, clients };
}
