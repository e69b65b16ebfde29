// Formatting shared by the pages: local times with UTC on hover, numbers with units, HTML escaping.

export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

const localFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });

/** A <time> element: the browser's zone in the text, UTC in the title (shown on hover). */
export function time(value) {
  if (!value) return '<span class="muted">—</span>';
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return esc(value);
  const utc = date.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
  return `<time datetime="${date.toISOString()}" title="${utc}">${esc(localFormat.format(date))}</time>`;
}

const units = [
  [/^(temperature|temp|temperatura|sensacion|heat_?index|feels_?like)$/i, '°C'],
  [/^(humidity|hum|humedad)$/i, '%'],
  [/^(radiation|radiacion|solar_?radiation)$/i, 'W/m²'],
];

export function unitOf(metric) {
  for (const [pattern, unit] of units) if (pattern.test(metric)) return unit;
  return '';
}

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

export function num(value) {
  return typeof value === 'number' && Number.isFinite(value) ? numberFormat.format(value) : '—';
}

/** A number with the unit of its metric when one is known. */
export function withUnit(value, metric) {
  const unit = unitOf(metric);
  if (!unit) return num(value);
  return unit === '%' ? `${num(value)} %` : `${num(value)} ${unit}`;
}

export const severities = ['critical', 'major', 'minor', 'warning', 'info'];

export function severityBadge(severity) {
  return `<span class="sev sev-${esc(severity)}">${esc(severity)}</span>`;
}

export function alertStateOf(alert) {
  if (alert.state === 'resolved') return 'resolved';
  return alert.acknowledged ? 'acknowledged' : 'open';
}
