// Rules: list, create, edit, enable/disable and delete, with the API's validation messages next to each field;
// a preview replays the rule in the form over a past range of stored minute aggregates before it is saved.
import { api, ApiError } from '../api.js';
import { esc, num, severities, severityBadge, time } from '../format.js';

const OPERATORS = ['>', '>=', '<', '<=', '==', '!='];
const SOURCES = ['raw', 'avg', 'min', 'max', 'sum', 'count', 'last'];

function targetText(t) {
  switch (t.kind) {
    case 'sensors': return `sensors ${(t.sensorIds ?? []).join(', ')}`;
    case 'location': return `location ${t.location}`;
    case 'model': return `model ${t.model}`;
    default: return 'all sensors';
  }
}

function conditionText(c) {
  if (c.kind === 'offline') return `no data for ${c.minutes} min`;
  const on = c.on && c.on !== 'raw' ? `${c.on} of minute ` : '';
  return `${on}${c.metric} ${c.operator} ${num(c.value)}${c.forMinutes ? ` for ${c.forMinutes} min` : ''}`;
}

const RANGES = [['1h', 'Last hour', 3_600_000], ['24h', 'Last 24 hours', 86_400_000], ['7d', 'Last 7 days', 7 * 86_400_000], ['custom', 'Custom range', 0]];

/** The value of a datetime-local input for a Date, in the browser's zone. */
function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

const field = (name, label, control, hint = '') => `
  <div class="field" data-field="${name}">
    <label for="f-${name}">${label}</label>
    ${control.replace('<input', `<input id="f-${name}" name="${name}" aria-describedby="e-${name}"`)
      .replace('<select', `<select id="f-${name}" name="${name}" aria-describedby="e-${name}"`)
      .replace('<textarea', `<textarea id="f-${name}" name="${name}" aria-describedby="e-${name}"`)}
    ${hint ? `<span class="muted small">${hint}</span>` : ''}
    <span class="field-error" id="e-${name}" data-error-for="${name}"></span>
  </div>`;

export function mount(root) {
  document.title = 'Rules · OrleansIot';
  root.innerHTML = `
    <section class="page rules-page">
      <h1>Rules</h1>
      <p id="rules-error" class="error" role="alert"></p>
      <p id="rules-more" class="muted" hidden></p>
      <div class="table-wrap">
        <table class="data rules-table">
          <caption class="visually-hidden">Alert rules</caption>
          <thead><tr><th scope="col">Rule</th><th scope="col">Severity</th><th scope="col">Target</th><th scope="col">Condition</th>
            <th scope="col">Enabled</th><th scope="col" class="num">Version</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
          <tbody id="rules-body"><tr><td colspan="7" class="muted">Loading…</td></tr></tbody>
        </table>
      </div>
      <h2 id="form-title">New rule</h2>
      <form id="rule-form" class="panel rule-form" novalidate aria-labelledby="form-title">
        <div class="form-grid">
          ${field('id', 'Id', '<input type="text" autocomplete="off" />', 'optional: made from the name')}
          ${field('name', 'Name', '<input type="text" autocomplete="off" required />')}
          ${field('severity', 'Severity', `<select>${severities.map((s) => `<option>${s}</option>`).join('')}</select>`)}
          ${field('enabled', 'Enabled', '<input type="checkbox" checked />')}
          ${field('target.kind', 'Target', '<select><option>all</option><option>sensors</option><option>location</option><option>model</option></select>')}
          ${field('target.sensorIds', 'Sensor ids', '<input type="text" autocomplete="off" />', 'comma separated')}
          ${field('target.location', 'Location', '<input type="text" autocomplete="off" />')}
          ${field('target.model', 'Model', '<input type="text" autocomplete="off" />')}
          ${field('condition.kind', 'Condition', '<select><option>threshold</option><option>offline</option></select>')}
          ${field('condition.metric', 'Metric', '<input type="text" autocomplete="off" />')}
          ${field('condition.on', 'On', `<select>${SOURCES.map((s) => `<option value="${s}">${s === 'raw' ? 'each reading' : `${s} of the minute`}</option>`).join('')}</select>`)}
          ${field('condition.operator', 'Operator', `<select>${OPERATORS.map((o) => `<option>${esc(o)}</option>`).join('')}</select>`)}
          ${field('condition.value', 'Value', '<input type="number" step="any" />')}
          ${field('condition.forMinutes', 'For (minutes)', '<input type="number" min="0" step="1" />')}
          ${field('condition.minutes', 'Minutes without data', '<input type="number" min="1" step="1" />')}
          ${field('cooldownSeconds', 'Cooldown (s)', '<input type="number" min="0" step="1" />')}
          ${field('controlAction.command', 'Command on opening', '<input type="text" autocomplete="off" />', 'optional')}
          ${field('controlAction.deviceId', 'Command device', '<input type="text" autocomplete="off" />', 'default: the alert\'s sensor')}
          ${field('controlAction.parameters', 'Command parameters', '<textarea rows="2"></textarea>', 'one key=value a line')}
        </div>
        <fieldset class="preview">
          <legend>Preview</legend>
          <p class="muted small">Replays the rule above over the stored minute aggregates of a past range (at most 7 days) and
            counts the alerts it would have opened. Nothing is saved.</p>
          <div class="form-grid">
            ${field('preview.range', 'Range', `<select>${RANGES.map(([v, label]) => `<option value="${v}">${label}</option>`).join('')}</select>`)}
            ${field('preview.from', 'From', '<input type="datetime-local" step="60" />', 'your time zone')}
            ${field('preview.to', 'To', '<input type="datetime-local" step="60" />', 'your time zone')}
          </div>
          <div class="actions">
            <button type="button" class="secondary" id="rule-preview">Preview</button>
          </div>
          <div id="preview-result" aria-live="polite"></div>
        </fieldset>
        <p id="form-error" class="error" role="alert"></p>
        <div class="actions">
          <button type="submit" id="rule-save">Create rule</button>
          <button type="button" class="secondary" id="rule-reset">Clear</button>
        </div>
      </form>
    </section>`;

  const $ = (s) => root.querySelector(s);
  const form = $('#rule-form');
  const body = $('#rules-body');
  const errorLine = $('#rules-error');
  let rules = [];
  let editing = null; // the rule being edited, or null for a new one
  let closed = false;

  const input = (name) => form.elements.namedItem(name);

  function syncVisibility() {
    const target = input('target.kind').value;
    const kind = input('condition.kind').value;
    const show = (name, visible) => {
      form.querySelector(`[data-field="${name}"]`).hidden = !visible;
    };
    show('target.sensorIds', target === 'sensors');
    show('target.location', target === 'location');
    show('target.model', target === 'model');
    for (const name of ['condition.metric', 'condition.on', 'condition.operator', 'condition.value', 'condition.forMinutes']) show(name, kind === 'threshold');
    show('condition.minutes', kind === 'offline');
    show('id', editing === null);
    const custom = input('preview.range').value === 'custom';
    show('preview.from', custom);
    show('preview.to', custom);
  }

  function clearErrors() {
    for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    $('#form-error').textContent = '';
  }

  /** Puts each ProblemDetails error next to its field ("target.sensorIds[1]" goes to "target.sensorIds"). */
  function showErrors(problem) {
    clearErrors();
    const general = [];
    let first = null;
    for (const [key, messages] of Object.entries(problem.errors ?? {})) {
      let name = key.replace(/\[\d+\]/g, '').replace(/^\$\.?/, '');
      // Preview errors: the rule's fields under "rule.", the range as "from" and "to".
      if (problem.preview) name = name === 'from' || name === 'to' ? `preview.${name}` : name.replace(/^rule\./, '');
      name = name.split('.').map((p, i) => (i === 0 ? p.charAt(0).toLowerCase() + p.slice(1) : p)).join('.');
      let slot = null;
      for (let c = name; c && !slot; c = c.includes('.') ? c.slice(0, c.lastIndexOf('.')) : '') {
        const found = form.querySelector(`[data-error-for="${c}"]`) ?? form.querySelector(`[data-error-for="${c}.kind"]`);
        if (found && !found.closest('.field').hidden) slot = found;
      }
      if (slot) {
        slot.textContent = [slot.textContent, ...messages].filter(Boolean).join(' ');
        const control = form.elements.namedItem(slot.dataset.errorFor);
        control?.setAttribute('aria-invalid', 'true');
        first ??= control;
      } else {
        general.push(...messages);
      }
    }
    $('#form-error').textContent = general.length ? general.join(' ') : (Object.keys(problem.errors ?? {}).length ? '' : problem.detail || problem.title || 'The rule could not be saved.');
    first?.focus();
  }

  function readForm() {
    const value = (name) => input(name).value.trim();
    const number = (name) => (value(name) === '' ? undefined : Number(value(name)));
    const target = { kind: value('target.kind') };
    if (target.kind === 'sensors') target.sensorIds = value('target.sensorIds').split(',').map((s) => s.trim()).filter(Boolean);
    if (target.kind === 'location') target.location = value('target.location');
    if (target.kind === 'model') target.model = value('target.model');
    const condition = { kind: value('condition.kind') };
    if (condition.kind === 'threshold') {
      condition.metric = value('condition.metric');
      condition.on = value('condition.on');
      condition.operator = value('condition.operator');
      condition.value = number('condition.value');
      condition.forMinutes = number('condition.forMinutes');
    } else {
      condition.minutes = number('condition.minutes');
    }
    const rule = {
      name: value('name'),
      enabled: input('enabled').checked,
      severity: value('severity'),
      target,
      condition,
      cooldownSeconds: number('cooldownSeconds'),
    };
    if (editing) rule.id = editing.id;
    else if (value('id')) rule.id = value('id');
    if (value('controlAction.command')) {
      const parameters = {};
      for (const line of input('controlAction.parameters').value.split('\n')) {
        const at = line.indexOf('=');
        if (at > 0) parameters[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      }
      rule.controlAction = { command: value('controlAction.command'), parameters, deviceId: value('controlAction.deviceId') || undefined };
    }
    return rule;
  }

  function fillForm(rule) {
    editing = rule;
    form.reset();
    clearErrors();
    $('#form-title').textContent = rule ? `Edit rule ${rule.id}` : 'New rule';
    $('#rule-save').textContent = rule ? 'Save changes' : 'Create rule';
    $('#rule-reset').textContent = rule ? 'Cancel' : 'Clear';
    $('#preview-result').replaceChildren();
    if (rule) {
      const set = (name, v) => {
        input(name).value = v ?? '';
      };
      set('name', rule.name);
      set('severity', rule.severity);
      input('enabled').checked = rule.enabled;
      set('target.kind', rule.target.kind);
      set('target.sensorIds', (rule.target.sensorIds ?? []).join(', '));
      set('target.location', rule.target.location);
      set('target.model', rule.target.model);
      set('condition.kind', rule.condition.kind);
      set('condition.metric', rule.condition.metric);
      set('condition.on', rule.condition.on ?? 'raw');
      set('condition.operator', rule.condition.operator ?? '>');
      set('condition.value', rule.condition.value);
      set('condition.forMinutes', rule.condition.forMinutes || '');
      set('condition.minutes', rule.condition.minutes);
      set('cooldownSeconds', rule.cooldownSeconds || '');
      set('controlAction.command', rule.controlAction?.command);
      set('controlAction.deviceId', rule.controlAction?.deviceId);
      set('controlAction.parameters', Object.entries(rule.controlAction?.parameters ?? {}).map(([k, v]) => `${k}=${v}`).join('\n'));
    }
    syncVisibility();
  }

  function renderList() {
    body.innerHTML = rules.map((r) => `
      <tr data-rule-id="${esc(r.id)}" data-enabled="${r.enabled}">
        <th scope="row">${esc(r.name)}<br /><span class="muted small">${esc(r.id)}</span></th>
        <td>${severityBadge(r.severity)}</td>
        <td>${esc(targetText(r.target))}</td>
        <td>${esc(conditionText(r.condition))}${r.cooldownSeconds ? `<br /><span class="muted small">cooldown ${num(r.cooldownSeconds)} s</span>` : ''}
          ${r.controlAction ? `<br /><span class="muted small">command ${esc(r.controlAction.command)}</span>` : ''}</td>
        <td><button type="button" class="secondary toggle" data-toggle="${esc(r.id)}" aria-pressed="${r.enabled}"
          aria-label="${r.enabled ? 'Disable' : 'Enable'} ${esc(r.name)}">${r.enabled ? 'Enabled' : 'Disabled'}</button></td>
        <td class="num">${num(r.version)}</td>
        <td class="row-actions"><button type="button" class="secondary" data-edit="${esc(r.id)}" aria-label="Edit ${esc(r.name)}">Edit</button>
          <button type="button" class="danger" data-delete="${esc(r.id)}" aria-label="Delete ${esc(r.name)}">Delete</button></td>
      </tr>`).join('') || '<tr><td colspan="7" class="muted">No rules yet.</td></tr>';
  }

  async function load() {
    try {
      const page = await api('/api/v1/rules?limit=1000');
      rules = page.items.sort((a, b) => a.name.localeCompare(b.name));
      if (closed) return;
      errorLine.textContent = '';
      const more = $('#rules-more');
      more.hidden = page.total <= page.items.length;
      more.textContent = `Showing the first ${num(page.items.length)} of ${num(page.total)} rules (by id).`;
      renderList();
    } catch (error) {
      errorLine.textContent = `Rules could not be loaded: ${error.message}`;
    }
  }

  /** The preview range as ISO times: a preset ending now, or the custom fields (read in the browser's zone). */
  function previewRange() {
    const range = input('preview.range').value;
    if (range !== 'custom') {
      const to = new Date();
      const span = RANGES.find(([v]) => v === range)[2];
      return { from: new Date(to.getTime() - span).toISOString(), to: to.toISOString() };
    }
    const iso = (name) => {
      const text = input(name).value;
      const date = text ? new Date(text) : null;
      return date && !Number.isNaN(date.getTime()) ? date.toISOString() : undefined;
    };
    return { from: iso('preview.from'), to: iso('preview.to') };
  }

  function renderPreview(result) {
    const out = $('#preview-result');
    const n = result.total;
    const scanned = result.sensorsScanned < result.sensorsTargeted
      ? ` Only the first ${num(result.sensorsScanned)} of the ${num(result.sensorsTargeted)} targeted sensors (by id) were replayed.`
      : ` ${num(result.sensorsScanned)} sensor${result.sensorsScanned === 1 ? '' : 's'} replayed.`;
    const shown = result.alerts.slice(0, 100);
    out.innerHTML = `
      <p id="preview-summary"><strong id="preview-count" data-count="${n}">${num(n)}</strong>
        alert${n === 1 ? '' : 's'} would have opened between ${time(result.from)} and ${time(result.to)}.${esc(scanned)}</p>
      ${result.approximation ? `<p id="preview-approximation" class="muted small">Approximation: ${esc(result.approximation)}.</p>` : ''}
      ${n === 0 ? '' : `
      <div class="table-wrap">
        <table class="data" id="preview-sensors">
          <caption class="visually-hidden">Would-be alerts per sensor</caption>
          <thead><tr><th scope="col">Sensor</th><th scope="col" class="num">Alerts</th></tr></thead>
          <tbody>${result.sensors.map((s) => `<tr data-sensor-id="${esc(s.sensorId)}">
            <th scope="row"><a href="#/sensors/${encodeURIComponent(s.sensorId)}">${esc(s.sensorId)}</a></th><td class="num">${num(s.alerts)}</td></tr>`).join('')}</tbody>
        </table>
      </div>
      <div class="table-wrap">
        <table class="data" id="preview-alerts">
          <caption class="visually-hidden">Would-be alerts</caption>
          <thead><tr><th scope="col">Sensor</th><th scope="col">Opened</th><th scope="col">Resolved</th><th scope="col" class="num">Value</th><th scope="col">Condition</th></tr></thead>
          <tbody>${shown.map((a) => `<tr data-sensor-id="${esc(a.sensorId)}">
            <td>${esc(a.sensorId)}</td><td>${time(a.openedAt)}</td><td>${a.resolvedAt ? time(a.resolvedAt) : '<span class="muted">still open</span>'}</td>
            <td class="num">${num(a.value)}</td><td>${esc(a.message)}</td></tr>`).join('')}</tbody>
        </table>
      </div>
      ${result.alerts.length > shown.length ? `<p class="muted small">The first ${shown.length} of ${num(n)} alerts are listed.</p>` : ''}`}`;
  }

  async function preview() {
    const button = $('#rule-preview');
    const out = $('#preview-result');
    button.disabled = true;
    clearErrors();
    out.innerHTML = '<p class="muted">Replaying…</p>';
    try {
      const rule = readForm();
      renderPreview(await api('/api/v1/rules/preview', { method: 'POST', body: { rule, ...previewRange() } }));
    } catch (error) {
      out.replaceChildren();
      if (error instanceof ApiError) showErrors({ ...error.problem, preview: true });
      else $('#form-error').textContent = error.message;
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener('change', (e) => {
    if (e.target.name === 'target.kind' || e.target.name === 'condition.kind' || e.target.name === 'preview.range') syncVisibility();
    if (e.target.name === 'preview.range' && e.target.value === 'custom' && !input('preview.from').value) {
      const now = new Date();
      input('preview.from').value = localInputValue(new Date(now.getTime() - 86_400_000));
      input('preview.to').value = localInputValue(now);
    }
  });
  form.addEventListener('keydown', (e) => {
    // Enter in a preview field previews; it does not save the rule.
    if (e.key === 'Enter' && e.target.name?.startsWith('preview.')) {
      e.preventDefault();
      preview();
    }
  });
  $('#rule-preview').addEventListener('click', preview);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const rule = readForm();
    const save = $('#rule-save');
    save.disabled = true;
    try {
      const saved = editing
        ? await api(`/api/v1/rules/${encodeURIComponent(editing.id)}`, { method: 'PUT', body: rule })
        : await api('/api/v1/rules', { method: 'POST', body: rule });
      fillForm(null);
      errorLine.textContent = '';
      $('#form-error').textContent = '';
      await load();
      root.querySelector(`tr[data-rule-id="${CSS.escape(saved.id)}"] button[data-edit]`)?.focus();
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) showErrors({ errors: { id: [error.message] } });
      else if (error instanceof ApiError) showErrors(error.problem);
      else $('#form-error').textContent = error.message;
    } finally {
      save.disabled = false;
    }
  });
  $('#rule-reset').addEventListener('click', () => fillForm(null));

  body.addEventListener('click', async (e) => {
    const button = e.target.closest('button');
    if (!button) return;
    const rule = rules.find((r) => r.id === (button.dataset.edit ?? button.dataset.toggle ?? button.dataset.delete));
    if (!rule) return;
    try {
      if (button.dataset.edit) {
        fillForm(rule);
        input('name').focus();
      } else if (button.dataset.toggle) {
        button.disabled = true;
        await api(`/api/v1/rules/${encodeURIComponent(rule.id)}`, { method: 'PUT', body: { ...rule, enabled: !rule.enabled } });
        await load();
        root.querySelector(`button[data-toggle="${CSS.escape(rule.id)}"]`)?.focus();
      } else if (button.dataset.delete) {
        if (button.dataset.confirm !== 'yes') {
          button.dataset.confirm = 'yes';
          button.textContent = 'Confirm delete';
          return;
        }
        await api(`/api/v1/rules/${encodeURIComponent(rule.id)}`, { method: 'DELETE' });
        if (editing?.id === rule.id) fillForm(null);
        await load();
      }
    } catch (error) {
      errorLine.textContent = `${rule.name}: ${error.message}`;
      load();
    }
  });

  fillForm(null);
  load();
  return () => {
    closed = true;
  };
}
