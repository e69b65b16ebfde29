// Sensor detail: one chart per metric (minute min–max band and average, with the outside value of the same name at the
// sensor's location as a dashed line; an outside metric the sensor does not measure gets a small chart of its own) over
// a chosen range, the current minute (refreshed live), the last readings, the sensor's active alerts and the commands
// sent to it (refreshed every 2 s), and the form that edits what the operator sets of its metadata next to what the
// device sent.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api, qs } from '../api.js';
import { onLive, onReconnected, SeenIds, subscribeSensor } from '../live.js';
import { alertStateOf, esc, num, severityBadge, time, unitOf, withUnit } from '../format.js';

const RANGES = { '1h': 3_600_000, '24h': 86_400_000 };
const META_FIELDS = ['location', 'model', 'owner'];
const MINUTE = 60_000;

function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * MINUTE);
  return d.toISOString().slice(0, 16);
}

export function mount(root, [sensorId], query) {
  document.title = `${sensorId} · Sensors · OrleansIot`;
  const customFrom = Date.parse(query.get('from') ?? '');
  const customTo = Date.parse(query.get('to') ?? '');
  let range = Number.isFinite(customFrom) && Number.isFinite(customTo) && customFrom < customTo ? 'custom' : (RANGES[query.get('range')] ? query.get('range') : '1h');
  let from = range === 'custom' ? customFrom : Date.now() - RANGES[range];
  let to = range === 'custom' ? customTo : Date.now();

  root.innerHTML = `
    <section class="page sensor-page" data-sensor-id="${esc(sensorId)}">
      <p><a href="#/sensors">← Sensors</a></p>
      <h1>Sensor ${esc(sensorId)}</h1>
      <p id="sensor-error" class="error" role="alert"></p>
      <div class="panel" id="sensor-meta"><span class="muted">Loading…</span></div>
      <h2 id="metadata-title">Metadata</h2>
      <form id="metadata-form" class="panel metadata-form" novalidate aria-labelledby="metadata-title">
        <p class="muted small">What you set wins over what the device sends, field by field and tag by tag; leave a field empty to
          let the device's value show. Rules by location or model follow a change from the device's next reading on.</p>
        <div class="table-wrap">
          <table class="data" id="metadata-table">
            <caption class="visually-hidden">Metadata: sent by the device, set by the operator, in effect</caption>
            <thead><tr><th scope="col">Field</th><th scope="col">Device sent</th><th scope="col">Operator sets</th><th scope="col">In effect</th></tr></thead>
            <tbody>
              ${META_FIELDS.map((f) => `<tr data-meta-field="${f}"><th scope="row"><label for="m-${f}">${f}</label></th>
                <td class="device-value"></td>
                <td><input id="m-${f}" name="${f}" type="text" autocomplete="off" aria-describedby="me-${f}" />
                  <span class="field-error" id="me-${f}" data-error-for="${f}"></span></td>
                <td class="effective-value"></td></tr>`).join('')}
              <tr data-meta-field="tags"><th scope="row"><label for="m-tags">tags</label></th>
                <td class="device-value"></td>
                <td><textarea id="m-tags" name="tags" rows="3" aria-describedby="me-tags" placeholder="name=value, one a line"></textarea>
                  <span class="field-error" id="me-tags" data-error-for="tags"></span></td>
                <td class="effective-value"></td></tr>
            </tbody>
          </table>
        </div>
        <p><button type="submit" id="metadata-save">Save metadata</button> <span id="metadata-status" class="muted" role="status"></span></p>
        <p id="metadata-error" class="error" role="alert"></p>
      </form>
      <h2>Active alerts</h2>
      <div id="sensor-alerts" class="panel"></div>
      <h2 id="commands-title">Commands sent</h2>
      <div id="sensor-commands" class="table-wrap" aria-labelledby="commands-title"><p class="muted panel">Loading…</p></div>
      <h2>Minutes</h2>
      <form class="filters" id="range-form" aria-label="Chart range">
        <label>Range
          <select id="range-select" name="range">
            <option value="1h">last hour</option>
            <option value="24h">last 24 h</option>
            <option value="custom">custom</option>
          </select>
        </label>
        <label>From <input id="range-from" name="from" type="datetime-local" /></label>
        <label>To <input id="range-to" name="to" type="datetime-local" /></label>
        <button type="submit" id="range-apply">Show</button>
      </form>
      <div id="charts" class="grid" aria-live="polite"></div>
      <h2>Current minute</h2>
      <div id="current-minute" class="table-wrap"></div>
      <h2>Last readings</h2>
      <div id="last-readings" class="table-wrap"></div>
    </section>`;

  const $ = (selector) => root.querySelector(selector);
  const errorLine = $('#sensor-error');
  const rangeSelect = $('#range-select');
  const fromInput = $('#range-from');
  const toInput = $('#range-to');
  const chartsEl = $('#charts');
  // metric -> { plot, el, height, points: Map(minuteMs -> point), outside: Map(minuteMs -> value), own, withOutside }:
  // own and withOutside say which series the chart was drawn with; a live minute that needs another one redraws them all.
  const charts = new Map();
  const alerts = new Map();
  const seen = new SeenIds();
  const resize = new ResizeObserver(() => {
    for (const chart of charts.values()) chart.plot.setSize({ width: chartWidth(chart.el), height: chart.height });
  });
  let detailTimer = 0;
  let closed = false;

  function syncRangeInputs() {
    rangeSelect.value = range;
    fromInput.value = localInput(from);
    toInput.value = localInput(to);
    const custom = range === 'custom';
    fromInput.disabled = !custom;
    toInput.disabled = !custom;
  }

  function chartWidth(el) {
    return Math.max(280, el.clientWidth - 2);
  }

  /** The charts of the sensor's own metrics (in name order), then those of outside metrics it does not measure. */
  function drawCharts(pointsByMetric, outsideByMetric) {
    for (const chart of charts.values()) chart.plot.destroy();
    charts.clear();
    resize.disconnect();
    chartsEl.innerHTML = '';
    const metrics = [...pointsByMetric.keys()].sort();
    const outsideOnly = [...outsideByMetric.keys()].filter((m) => !pointsByMetric.has(m)).sort();
    if (metrics.length === 0 && outsideOnly.length === 0) {
      chartsEl.innerHTML = '<p class="muted" id="no-minutes">No closed minutes in this range.</p>';
      return;
    }
    for (const metric of [...metrics, ...outsideOnly]) {
      drawChart(metric, pointsByMetric.get(metric) ?? [], outsideByMetric.get(metric) ?? []);
    }
  }

  function drawChart(metric, points, outside) {
    const own = points.length > 0;
    const withOutside = outside.length > 0;
    const el = document.createElement('figure');
    el.className = own ? 'chart panel' : 'chart panel chart-outside';
    el.dataset.metric = metric;
    const unit = unitOf(metric);
    const title = own ? `<strong>${esc(metric)}</strong>` : `<strong>outside ${esc(metric)}</strong>`;
    const note = own
      ? `minute min–max band and average${withOutside ? '; dashed: outside at the sensor\'s location' : ''}`
      : `at the sensor's location; the sensor does not measure ${esc(metric)}`;
    el.innerHTML = `<figcaption>${title}${unit ? ` <span class="muted">(${esc(unit)})</span>` : ''}
      <span class="muted small">${note}</span></figcaption>`;
    chartsEl.appendChild(el);
    const chart = {
      el,
      height: own ? 220 : 140,
      own,
      withOutside,
      points: new Map(points.map((p) => [Date.parse(p.minute), p])),
      outside: new Map(outside.map((o) => [Date.parse(o.minute), o.value])),
      plot: null,
    };
    const fmt = (_u, v) => (v == null ? '—' : withUnit(v, metric));
    const series = [{ value: (_u, v) => (v == null ? '—' : new Date(v * 1000).toLocaleString()) }];
    if (own) {
      series.push(
        { label: 'min', stroke: 'rgba(31,95,191,0.45)', width: 1, value: fmt },
        { label: 'max', stroke: 'rgba(31,95,191,0.45)', width: 1, value: fmt },
        { label: 'avg', stroke: '#1f5fbf', width: 2, value: fmt },
      );
    }
    if (withOutside) series.push({ label: `outside ${metric}`, stroke: '#c2571a', width: 2, dash: [6, 4], value: fmt });
    chart.plot = new uPlot({
      width: chartWidth(el),
      height: chart.height,
      scales: { x: { time: true } },
      series,
      bands: own ? [{ series: [2, 1], fill: 'rgba(31,95,191,0.15)' }] : [],
      legend: { markers: { dash: (u, i) => (u.series[i].dash ? 'dashed' : 'solid') } },
      axes: [{}, { values: (_u, values) => values.map((v) => num(v)), size: 60 }],
    }, chartData(chart), el);
    charts.set(metric, chart);
    resize.observe(el);
  }

  /** The chart's minutes (its own and the outside ones) with a value or null for each series. */
  function chartData(chart) {
    const minutes = [...new Set([...chart.points.keys(), ...chart.outside.keys()])].sort((a, b) => a - b);
    chart.el.dataset.points = String(chart.points.size);
    if (chart.withOutside) {
      chart.el.dataset.outsidePoints = String(chart.outside.size);
      chart.el.dataset.outsideLast = String(chart.outside.get(Math.max(...chart.outside.keys())) ?? '');
    }
    const data = [minutes.map((m) => m / 1000)];
    if (chart.own) {
      const p = minutes.map((m) => chart.points.get(m));
      data.push(p.map((x) => x?.min ?? null), p.map((x) => x?.max ?? null), p.map((x) => x?.avg ?? null));
    }
    if (chart.withOutside) data.push(minutes.map((m) => chart.outside.get(m) ?? null));
    return data;
  }

  async function loadMetrics() {
    try {
      const result = await api(`/api/v1/sensors/${encodeURIComponent(sensorId)}/metrics${qs({ from: new Date(from).toISOString(), to: new Date(to).toISOString() })}`);
      const byMetric = (items) => {
        const grouped = new Map();
        for (const item of items ?? []) {
          if (!grouped.has(item.metric)) grouped.set(item.metric, []);
          grouped.get(item.metric).push(item);
        }
        return grouped;
      };
      if (!closed) drawCharts(byMetric(result.points), byMetric(result.outside));
      chartsEl.dataset.loaded = 'true';
    } catch (error) {
      errorLine.textContent = `Minutes could not be loaded: ${error.message}`;
    }
  }

  const metaForm = $('#metadata-form');
  let metaEdited = false; // the form keeps what the operator types until it is saved
  let metaLoaded = false;

  const tagsText = (tags) => Object.entries(tags ?? {}).map(([k, v]) => `${k}=${v}`).join('\n');
  const tagList = (tags) => Object.entries(tags ?? {}).map(([k, v]) => `${esc(k)}=${esc(v)}`).join(', ') || '<span class="muted">—</span>';
  const byOperator = (d, f) => (d.operatorMetadata?.[f] != null ? ' <span class="badge operator-set" title="set by an operator">operator</span>' : '');

  function fillMetaForm(operator) {
    for (const f of META_FIELDS) metaForm.elements.namedItem(f).value = operator?.[f] ?? '';
    metaForm.elements.namedItem('tags').value = tagsText(operator?.tags);
    metaLoaded = true;
  }

  function renderMetaTable(d) {
    const device = d.deviceMetadata ?? {};
    const effective = d.metadata ?? {};
    for (const f of META_FIELDS) {
      const row = metaForm.querySelector(`[data-meta-field="${f}"]`);
      row.querySelector('.device-value').innerHTML = device[f] != null ? esc(device[f]) : '<span class="muted">—</span>';
      row.querySelector('.effective-value').innerHTML = effective[f] != null ? esc(effective[f]) + byOperator(d, f) : '<span class="muted">—</span>';
    }
    const tags = metaForm.querySelector('[data-meta-field="tags"]');
    tags.querySelector('.device-value').innerHTML = tagList(device.extra);
    tags.querySelector('.effective-value').innerHTML = tagList(effective.extra);
    if (!metaEdited) fillMetaForm(d.operatorMetadata);
  }

  /** The form as the PUT body: an empty field is null (left to the device); tags from "name=value" lines. */
  function metaBody() {
    const body = {};
    for (const f of META_FIELDS) {
      const value = metaForm.elements.namedItem(f).value.trim();
      body[f] = value === '' ? null : value;
    }
    const tags = {};
    const lines = metaForm.elements.namedItem('tags').value.split('\n').map((l) => l.trim()).filter(Boolean);
    for (const [i, line] of lines.entries()) {
      const eq = line.indexOf('=');
      if (eq <= 0) return { error: `line ${i + 1} of the tags is not name=value` };
      tags[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
    }
    body.tags = tags;
    return { body };
  }

  function clearMetaErrors() {
    for (const el of metaForm.querySelectorAll('.field-error')) el.textContent = '';
    for (const el of metaForm.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    $('#metadata-error').textContent = '';
  }

  /** Each ProblemDetails error next to its field ("tags.site" goes to the tags). */
  function showMetaErrors(problem) {
    const general = [];
    for (const [key, messages] of Object.entries(problem.errors ?? {})) {
      const name = key.replace(/^\$\.?/, '').split('.')[0];
      const slot = metaForm.querySelector(`[data-error-for="${name}"]`);
      if (slot) {
        slot.textContent = [slot.textContent, ...messages].filter(Boolean).join(' ');
        metaForm.elements.namedItem(name)?.setAttribute('aria-invalid', 'true');
      } else {
        general.push(...messages);
      }
    }
    $('#metadata-error').textContent = general.length ? general.join(' ') : (Object.keys(problem.errors ?? {}).length ? '' : problem.detail || problem.title || 'The metadata could not be saved.');
  }

  metaForm.addEventListener('input', () => {
    metaEdited = true;
    $('#metadata-status').textContent = '';
  });
  metaForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearMetaErrors();
    const { body, error } = metaBody();
    if (error) {
      $('#metadata-error').textContent = error;
      return;
    }
    const save = $('#metadata-save');
    save.disabled = true;
    try {
      const set = await api(`/api/v1/sensors/${encodeURIComponent(sensorId)}/metadata`, { method: 'PUT', body });
      if (closed) return;
      metaEdited = false;
      fillMetaForm(set);
      $('#metadata-status').textContent = 'Saved.';
      loadDetail();
    } catch (err) {
      if (!closed) showMetaErrors(err.problem ?? {});
    } finally {
      save.disabled = false;
    }
  });

  function renderMeta(d) {
    const meta = d.metadata ?? {};
    renderMetaTable(d);
    $('#sensor-meta').innerHTML = `
      <dl class="facts">
        <div><dt>Location</dt><dd id="meta-location">${esc(meta.location ?? '—')}${byOperator(d, 'location')}</dd></div>
        <div><dt>Model</dt><dd id="meta-model">${esc(meta.model ?? '—')}${byOperator(d, 'model')}</dd></div>
        ${meta.owner ? `<div><dt>Owner</dt><dd id="meta-owner">${esc(meta.owner)}${byOperator(d, 'owner')}</dd></div>` : ''}
        ${meta.version ? `<div><dt>Version</dt><dd>${esc(meta.version)}</dd></div>` : ''}
        <div><dt>Last seen</dt><dd>${time(d.lastSeen)}</dd></div>
        <div><dt>MQTT</dt><dd id="sensor-mqtt">${d.mqtt ? `connected since ${time(d.mqtt.since)} <span class="muted small">MQTT ${esc(d.mqtt.protocol)}, Api node ${esc(d.mqtt.node)}</span>` : '<span class="muted">not connected</span>'}</dd></div>
        <div><dt>Late readings</dt><dd>${num(d.lateCount)}${d.lastLate ? ` <span class="muted small">last ${time(d.lastLate)}</span>` : ''}</dd></div>
        ${Object.entries(d.latest ?? {}).map(([m, v]) => `<div><dt>${esc(m)}</dt><dd>${esc(withUnit(v, m))}</dd></div>`).join('')}
        ${Object.entries(d.attributes ?? {}).map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${esc(v)}</dd></div>`).join('')}
      </dl>`;
    const current = d.currentMinute;
    $('#current-minute').innerHTML = current && current.metrics.length
      ? `<table class="data" id="current-minute-table"><caption class="visually-hidden">Current minute</caption>
          <thead><tr><th scope="col">Metric</th><th scope="col" class="num">Count</th><th scope="col" class="num">Min</th><th scope="col" class="num">Avg</th>
          <th scope="col" class="num">Max</th><th scope="col" class="num">Last</th></tr></thead>
          <tbody>${current.metrics.map((m) => `<tr><th scope="row">${esc(m.metric)} <span class="muted small">${time(current.minute)}</span></th>
            <td class="num">${num(m.count)}</td><td class="num">${esc(withUnit(m.min, m.metric))}</td><td class="num">${esc(withUnit(m.avg, m.metric))}</td>
            <td class="num">${esc(withUnit(m.max, m.metric))}</td><td class="num">${esc(withUnit(m.last, m.metric))}</td></tr>`).join('')}</tbody></table>`
      : '<p class="muted panel">No reading in the current minute.</p>';
    const readings = [...(d.lastReadings ?? [])].reverse();
    const metrics = [...new Set(readings.flatMap((r) => Object.keys(r.metrics ?? {})))].sort();
    $('#last-readings').innerHTML = readings.length
      ? `<table class="data" id="last-readings-table"><caption class="visually-hidden">Last readings, newest first</caption>
          <thead><tr><th scope="col">Time</th>${metrics.map((m) => `<th scope="col" class="num">${esc(m)}${unitOf(m) ? ` (${esc(unitOf(m))})` : ''}</th>`).join('')}<th scope="col">Attributes</th></tr></thead>
          <tbody>${readings.map((r) => `<tr${r.late ? ' class="late"' : ''}><td>${time(r.timestamp)}${r.late ? ' <span class="state state-open">late</span>' : ''}</td>
            ${metrics.map((m) => `<td class="num">${num(r.metrics?.[m])}</td>`).join('')}
            <td>${Object.entries(r.attributes ?? {}).map(([k, v]) => `${esc(k)}=${esc(v)}`).join(', ')}</td></tr>`).join('')}</tbody></table>`
      : '<p class="muted panel">No readings.</p>';
  }

  async function loadDetail() {
    try {
      const detail = await api(`/api/v1/sensors/${encodeURIComponent(sensorId)}`);
      if (closed) return;
      errorLine.textContent = '';
      renderMeta(detail);
    } catch (error) {
      if (closed) return;
      errorLine.textContent = error.status === 404
        ? `There is no sensor '${sensorId}'. Saving its metadata below registers it.`
        : `The sensor could not be loaded: ${error.message}`;
      if (error.status === 404 && !metaLoaded && !metaEdited) fillMetaForm(null);
    }
  }

  function renderCommands(commands) {
    $('#sensor-commands').innerHTML = commands.length
      ? `<table class="data" id="commands-table"><caption class="visually-hidden">Commands sent to ${esc(sensorId)}, newest first</caption>
          <thead><tr><th scope="col">Created</th><th scope="col">Command</th><th scope="col">Parameters</th><th scope="col">Rule</th>
          <th scope="col">Fetched by the device</th></tr></thead>
          <tbody>${commands.map((c) => `<tr data-command-id="${esc(c.id)}" data-delivered="${c.deliveredAt ? 'true' : 'false'}">
            <td>${time(c.createdAt)}</td><td>${esc(c.command)}</td>
            <td>${Object.entries(c.parameters ?? {}).map(([k, v]) => `${esc(k)}=${esc(v)}`).join(', ')}</td>
            <td>${esc(c.ruleId)}</td><td>${c.deliveredAt ? time(c.deliveredAt) : '<span class="muted">pending</span>'}</td></tr>`).join('')}</tbody></table>`
      : '<p class="muted panel" id="no-commands">No command was sent to this sensor.</p>';
  }

  async function loadCommands() {
    try {
      const commands = await api(`/api/v1/sensors/${encodeURIComponent(sensorId)}/commands${qs({ limit: 50 })}`);
      if (!closed) renderCommands(commands);
    } catch (error) {
      if (closed) return;
      if (error.status === 404) renderCommands([]);
      else errorLine.textContent = `Commands could not be loaded: ${error.message}`;
    }
  }

  function renderAlerts() {
    const active = [...alerts.values()].filter((a) => a.state === 'open').sort((a, b) => (b.openedAt > a.openedAt ? 1 : -1));
    $('#sensor-alerts').innerHTML = active.length
      ? `<ul class="plain" id="sensor-alert-list">${active.map((a) => `<li data-alert-id="${esc(a.id)}">${severityBadge(a.severity)}
          <span class="state state-${alertStateOf(a)}">${alertStateOf(a)}</span> ${esc(a.ruleName)}: ${esc(a.message)}
          <span class="muted small">since ${time(a.openedAt)}</span></li>`).join('')}</ul>`
      : '<p class="muted">No active alert.</p>';
  }

  async function loadAlerts() {
    try {
      const found = await api(`/api/v1/alerts${qs({ sensorId, state: 'open', limit: 1000 })}`);
      for (const a of found) alerts.set(a.id, { ...alerts.get(a.id), ...a });
      renderAlerts();
    } catch {
      // The live events still update the list.
    }
  }

  function addMinute(event) {
    const minute = Date.parse(event.minute);
    if (range !== 'custom') {
      to = Math.max(to, minute + MINUTE);
      from = to - RANGES[range];
    }
    if (minute < from || minute >= to) return;
    const outside = Object.entries(event.outside ?? {});
    // A metric without a chart, or a value for a series its chart was drawn without: draw them all again.
    if (event.metrics.some((m) => !charts.get(m.metric)?.own) || outside.some(([metric]) => !charts.get(metric)?.withOutside)) {
      loadMetrics();
      return;
    }
    const changed = new Set();
    for (const m of event.metrics) {
      charts.get(m.metric).points.set(minute, { minute: event.minute, ...m });
      changed.add(m.metric);
    }
    for (const [metric, value] of outside) {
      charts.get(metric).outside.set(minute, value);
      changed.add(metric);
    }
    for (const metric of changed) {
      const chart = charts.get(metric);
      for (const key of chart.points.keys()) if (key < from) chart.points.delete(key);
      for (const key of chart.outside.keys()) if (key < from) chart.outside.delete(key);
      chart.plot.setData(chartData(chart));
    }
  }

  const unsubscribe = subscribeSensor(sensorId);
  const offAggregate = onLive('aggregate', (event) => {
    if (event.sensorId !== sensorId || !seen.add(event.eventId)) return;
    addMinute(event);
  });
  const offAlert = onLive('alert', (event) => {
    if (event.alert.sensorId !== sensorId || !seen.add(event.eventId)) return;
    const current = alerts.get(event.alert.id);
    if (current?.state === 'resolved') return;
    alerts.set(event.alert.id, { ...current, ...event.alert, acknowledged: current?.acknowledged || event.alert.acknowledged });
    renderAlerts();
  });
  const offReconnected = onReconnected(() => {
    loadAlerts();
    loadMetrics();
  });

  rangeSelect.addEventListener('change', () => {
    range = rangeSelect.value;
    if (range !== 'custom') {
      to = Date.now();
      from = to - RANGES[range];
      syncRangeInputs();
      history.replaceState(null, '', `#/sensors/${encodeURIComponent(sensorId)}${qs({ range })}`);
      loadMetrics();
    } else {
      syncRangeInputs();
      fromInput.focus();
    }
  });
  $('#range-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (range === 'custom') {
      const f = new Date(fromInput.value).getTime();
      const t = new Date(toInput.value).getTime();
      if (!Number.isFinite(f) || !Number.isFinite(t) || f >= t) {
        errorLine.textContent = 'Choose a start before the end.';
        return;
      }
      from = f;
      to = t;
      history.replaceState(null, '', `#/sensors/${encodeURIComponent(sensorId)}${qs({ from: new Date(from).toISOString(), to: new Date(to).toISOString() })}`);
    } else {
      to = Date.now();
      from = to - RANGES[range];
    }
    loadMetrics();
  });

  syncRangeInputs();
  loadDetail();
  loadAlerts();
  loadCommands();
  loadMetrics();
  detailTimer = setInterval(() => {
    if (document.visibilityState !== 'visible') return;
    loadDetail();
    loadCommands();
  }, 2000);
  return () => {
    closed = true;
    clearInterval(detailTimer);
    unsubscribe();
    offAggregate();
    offAlert();
    offReconnected();
    resize.disconnect();
    for (const chart of charts.values()) chart.plot.destroy();
  };
}
