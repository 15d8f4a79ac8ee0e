import type { AlertMessage } from '@mcp-audit/schema';

/**
 * What the notifier knows of incidents from the messages it delivered: which incident an alert
 * belongs to and which of its alerts are still open. The detector's messages carry the incident; a
 * human's acknowledge or resolve through the analyst API names only the alert, so this maps it back
 * (PagerDuty pages per incident: the human's change must reach the incident's dedup_key). In memory
 * and bounded: after a restart a human's change on an older incident falls back to the alert.
 */
export class IncidentBook {
  readonly #incidentOf = new Map<string, string>();
  readonly #open = new Map<string, Set<string>>();

  constructor(private readonly max = 50_000) {}

  /** Records a message; returns its incident id (from the message, else from an earlier one). */
  note(m: AlertMessage): string | undefined {
    const id = m.incident_id ?? this.#incidentOf.get(m.alert_id);
    if (!id) return undefined;
    if (!this.#incidentOf.has(m.alert_id)) {
      if (this.#incidentOf.size >= this.max) this.#evict();
      this.#incidentOf.set(m.alert_id, id);
    }
    let open = this.#open.get(id);
    if (!open) this.#open.set(id, (open = new Set()));
    if (m.type === 'alert') open.add(m.alert_id);
    else if (m.status === 'resolved') open.delete(m.alert_id);
    if (m.incident?.status === 'resolved') open.clear();
    return id;
  }

  incidentOf(alertId: string): string | undefined {
    return this.#incidentOf.get(alertId);
  }

  /** Alerts of the incident still open as far as this notifier saw (after `note`). */
  openAlerts(incidentId: string): number {
    return this.#open.get(incidentId)?.size ?? 0;
  }

  #evict(): void {
    // Oldest tenth first (Map keeps insertion order).
    let n = Math.ceil(this.max / 10);
    for (const [alertId, id] of this.#incidentOf) {
      if (n-- <= 0) break;
      this.#incidentOf.delete(alertId);
      this.#open.delete(id);
    }
  }
}
