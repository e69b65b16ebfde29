// Alerts: live over SignalR, newest first, filters, counts of active alerts by severity, acknowledge.
import { api, qs } from '../api.js';
import { onLive, onReconnected, SeenIds } from '../live.js';
import { alertStateOf, esc, num, severities, severityBadge, time } from '../format.js';

const MAX_ROWS = 500;
const stateRank = { open: 0, acknowledged: 1, resolved: 2 };

/** Keeps the most advanced version of an alert: events may arrive out of order or again after a replay. */
function merge(current, incoming) {
  if (!current) return incoming;
  const merged = stateRank[alertStateOf(incoming)] >= stateRank[alertStateOf(current)] ? { ...current, ...incoming } : { ...incoming, ...current };
  if (current.acknowledged && !incoming.acknowledged) {
    merged.acknowledged = true;
    merged.acknowledgedAt = current.acknowledgedAt;
    merged.acknowledgedBy = current.acknowledgedBy;
  }
  if (current.state === 'resolved') {
    merged.state = 'resolved';
    merged.resolvedAt = current.resolvedAt;
    merged.resolvedReason = current.resolvedReason;
  }
  return merged;
}

export function mount(root) {
  document.title = 'Alerts · OrleansIot';
  root.innerHTML = `
    <section class="page alerts-page">
      <h1>Alerts</h1>
      <div class="counts" id="alert-counts" aria-label="Active alerts by severity"></div>
      <form class="filters" id="alert-filters" role="search" aria-label="Filter alerts">
        <label>State
          <select name="state" id="filter-state">
            <option value="">all</option>
            <option value="active">active (open or acknowledged)</option>
            <option value="open">open, not acknowledged</option>
            <option value="acknowledged">acknowledged</option>
            <option value="resolved">resolved</option>
          </select>
        </label>
        <label>Severity
          <select name="severity" id="filter-severity">
            <option value="">all</option>
            ${severities.map((s) => `<option value="${s}">${s}</option>`).join('')}
          </select>
        </label>
        <label>Rule
          <select name="rule" id="filter-rule"><option value="">all</option></select>
        </label>
        <label>Sensor
          <input name="sensor" id="filter-sensor" type="search" placeholder="sensor id contains…" autocomplete="off" />
        </label>
      </form>
      <p id="alerts-error" class="error" role="alert"></p>
      <div class="table-wrap">
        <table class="data alerts-table">
          <caption class="visually-hidden">Alerts, newest first</caption>
          <thead><tr><th scope="col">Opened</th><th scope="col">Severity</th><th scope="col">State</th><th scope="col">Rule</th>
            <th scope="col">Sensor</th><th scope="col">Message</th><th scope="col">Resolved</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody id="alerts-body"></tbody>
        </table>
      </div>
      <p id="alerts-summary" class="muted" aria-live="polite"></p>
    </section>`;

  const alerts = new Map();
  const seen = new SeenIds();
  const pendingAcks = new Set();
  const body = root.querySelector('#alerts-body');
  const counts = root.querySelector('#alert-counts');
  const summary = root.querySelector('#alerts-summary');
  const errorLine = root.querySelector('#alerts-error');
  const filters = root.querySelector('#alert-filters');
  const ruleSelect = root.querySelector('#filter-rule');
  let frame = 0;
  let loaded = false;

  function upsert(alert) {
    alerts.set(alert.id, merge(alerts.get(alert.id), alert));
    if (alertStateOf(alerts.get(alert.id)) !== 'open') pendingAcks.delete(alert.id);
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(draw);
  }

  function draw() {
    frame = 0;
    const all = [...alerts.values()];
    const active = all.filter((a) => a.state === 'open');
    counts.innerHTML = severities.map((s) => {
      const n = active.filter((a) => a.severity === s).length;
      return `<span class="count sev-${s}" data-severity="${s}" data-count="${n}"><span class="count-n">${n}</span> ${s}</span>`;
    }).join('') + `<span class="count total" data-count="${active.length}"><span class="count-n">${active.length}</span> active</span>`;

    const rules = new Map(all.map((a) => [a.ruleId, a.ruleName]));
    const selectedRule = ruleSelect.value;
    const options = [...rules.entries()].sort((a, b) => a[1].localeCompare(b[1]));
    const optionsKey = options.map((o) => o[0]).join('\n');
    if (ruleSelect.dataset.key !== optionsKey) {
      ruleSelect.dataset.key = optionsKey;
      ruleSelect.innerHTML = '<option value="">all</option>' + options.map(([id, name]) =>
        `<option value="${esc(id)}"${id === selectedRule ? ' selected' : ''}>${esc(name)} (${esc(id)})</option>`).join('');
    }

    const f = Object.fromEntries(new FormData(filters));
    const sensor = (f.sensor ?? '').trim().toLowerCase();
    const shown = all.filter((a) => {
      const state = alertStateOf(a);
      if (f.state === 'active' && a.state !== 'open') return false;
      if (f.state && f.state !== 'active' && state !== f.state) return false;
      if (f.severity && a.severity !== f.severity) return false;
      if (f.rule && a.ruleId !== f.rule) return false;
      if (sensor && !a.sensorId.toLowerCase().includes(sensor)) return false;
      return true;
    }).sort((a, b) => (b.openedAt > a.openedAt ? 1 : b.openedAt < a.openedAt ? -1 : 0));

    body.innerHTML = shown.slice(0, MAX_ROWS).map((a) => {
      const state = alertStateOf(a);
      const ackable = state === 'open';
      const pending = pendingAcks.has(a.id);
      const value = a.value != null ? ` <span class="muted">(value ${num(a.value)}${a.threshold != null ? `, threshold ${num(a.threshold)}` : ''})</span>` : '';
      return `<tr data-alert-id="${esc(a.id)}" data-state="${state}" class="alert-row sevrow-${esc(a.severity)}">
        <td>${time(a.openedAt)}</td>
        <td>${severityBadge(a.severity)}</td>
        <td><span class="state state-${state}">${state}</span>${a.acknowledged ? `<span class="muted small"> by ${esc(a.acknowledgedBy ?? '')}</span>` : ''}</td>
        <td>${esc(a.ruleName)}</td>
        <td><a href="#/sensors/${encodeURIComponent(a.sensorId)}">${esc(a.sensorId)}</a></td>
        <td>${esc(a.message)}${value}</td>
        <td>${a.resolvedAt ? `${time(a.resolvedAt)}${a.resolvedReason ? ` <span class="muted small">${esc(a.resolvedReason)}</span>` : ''}` : ''}</td>
        <td>${ackable ? `<button type="button" class="ack" data-ack="${esc(a.id)}" ${pending ? 'disabled' : ''}
            aria-label="Acknowledge ${esc(a.ruleName)} on ${esc(a.sensorId)}">${pending ? 'Acknowledging…' : 'Acknowledge'}</button>` : ''}</td>
      </tr>`;
    }).join('') || `<tr><td colspan="8" class="muted">${loaded ? 'No alerts match.' : 'Loading…'}</td></tr>`;
    summary.textContent = loaded
      ? `${shown.length} of ${all.length} alerts shown${shown.length > MAX_ROWS ? ` (first ${MAX_ROWS})` : ''}.`
      : '';
  }

  async function load() {
    try {
      const [recent, open] = await Promise.all([
        api(`/api/v1/alerts${qs({ limit: 1000 })}`),
        api(`/api/v1/alerts${qs({ state: 'open', limit: 1000 })}`),
      ]);
      for (const a of [...recent, ...open]) upsert(a);
      loaded = true;
      errorLine.textContent = '';
    } catch (error) {
      errorLine.textContent = `Alerts could not be loaded: ${error.message}`;
    }
    schedule();
  }

  const offAlert = onLive('alert', (event) => {
    if (!seen.add(event.eventId)) return;
    upsert(event.alert);
    schedule();
  });
  const offReconnected = onReconnected(load);

  filters.addEventListener('input', schedule);
  filters.addEventListener('submit', (e) => e.preventDefault());
  body.addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-ack]');
    if (!button) return;
    const id = button.dataset.ack;
    pendingAcks.add(id);
    schedule();
    try {
      await api(`/api/v1/alerts/${encodeURIComponent(id)}/ack`, { method: 'POST' });
      errorLine.textContent = '';
      // The "acknowledged" live event updates the row; fetch it too in case the event was missed.
      setTimeout(async () => {
        if (!pendingAcks.has(id)) return;
        try {
          const found = await api(`/api/v1/alerts${qs({ state: 'open', limit: 1000 })}`);
          for (const a of found) upsert(a);
          schedule();
        } catch {
          // Shown on the next load.
        }
      }, 3000);
    } catch (error) {
      pendingAcks.delete(id);
      errorLine.textContent = `Could not acknowledge: ${error.message}`;
      if (error.status === 409) load();
      schedule();
    }
  });

  load();
  schedule();
  return () => {
    offAlert();
    offReconnected();
    if (frame) cancelAnimationFrame(frame);
  };
}
