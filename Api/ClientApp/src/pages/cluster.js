// Cluster: the Orleans silos (status, uptime, partitions whose readers they run, activations per grain type, load, last
// "I am alive"), the partition map (one row per log partition as its reader reports it: silo, positions, lag, readings,
// sensors, last checkpoint; coloured by silo) and live charts of the last minutes (readings/s, alerts/min, readings/s per
// silo). Polls /api/v1/cluster and /api/v1/cluster/metrics every few seconds while the page is shown. Links to the
// Orleans Dashboard (/orleans/), which the Api serves to operators.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api } from '../api.js';
import { esc, num, time } from '../format.js';

const REFRESH_MS = 2000;
const CHART_HEIGHT = 200;
// Distinct, readable on white; an owner beyond these repeats a colour (its name is always written out too).
const PALETTE = ['#1f5fbf', '#c2410c', '#15803d', '#7e22ce', '#a16207', '#0e7490', '#be185d', '#4d7c0f'];

/** "3 d 4 h", "2 h 05 min", "4 min 09 s", "12 s". */
function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, '0');
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${pad(m)} min`;
  if (m > 0) return `${m} min ${pad(s % 60)} s`;
  return `${s} s`;
}

function rate(value, unit) {
  return typeof value === 'number' && Number.isFinite(value) ? `${num(value)} ${unit}` : '—';
}

// Orleans silo statuses: active (green), on its way in or out (amber), dead (red).
const STATUS_CLASS = { active: 'state-resolved', joining: 'state-acknowledged', 'shutting down': 'state-acknowledged', stopping: 'state-acknowledged' };

// The grain types of the system, in this order, then any other the Api reports.
const GRAIN_TYPES = ['sensor', 'rule', 'partition'];

function activations(counts) {
  if (counts == null) return 'not answering';
  const types = [...GRAIN_TYPES.filter((t) => t in counts), ...Object.keys(counts).filter((t) => !GRAIN_TYPES.includes(t))];
  return types.map((type) => `${num(counts[type])} ${esc(type)}`).join(', ') || '—';
}

function utc(value) {
  return new Date(value).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
}

export function mount(root) {
  document.title = 'Cluster · OrleansIot';
  root.innerHTML = `
    <section class="page cluster-page">
      <h1>Cluster</h1>
      <p class="page-links">
        <a id="orleans-dashboard-link" href="/orleans/" aria-describedby="orleans-dashboard-hint">Orleans Dashboard</a>
        <span id="orleans-dashboard-hint" class="muted small">Orleans' own view of grains, calls and silos. The browser asks for a user name and password: any user name, and the operator key as the password.</span>
      </p>
      <p id="cluster-error" class="error" role="alert"></p>
      <div class="panel" id="cluster-summary" aria-live="polite"><span class="muted">Loading…</span></div>
      <h2 id="silos-heading">Silos</h2>
      <div class="table-wrap">
        <table class="data" id="silo-table" aria-labelledby="silos-heading">
          <thead><tr><th scope="col">Silo</th><th scope="col">Status</th><th scope="col">Uptime</th><th scope="col">Partitions</th>
            <th scope="col">Activations</th><th scope="col" class="num">Readings/s</th><th scope="col" class="num">Readings applied</th>
            <th scope="col">Last “I am alive”</th></tr></thead>
          <tbody id="silo-body"><tr><td colspan="8" class="muted">Loading…</td></tr></tbody>
        </table>
      </div>
      <h2 id="load-heading">Load, last <span id="history-length">minutes</span></h2>
      <div class="grid" id="cluster-charts">
        <figure class="chart panel" id="chart-readings" data-points="0" aria-labelledby="chart-readings-caption">
          <figcaption id="chart-readings-caption"><strong>Readings applied</strong> <span class="muted">(readings/s, all silos)</span></figcaption>
        </figure>
        <figure class="chart panel" id="chart-alerts" data-points="0" aria-labelledby="chart-alerts-caption">
          <figcaption id="chart-alerts-caption"><strong>Alerts opened</strong> <span class="muted">(alerts/min, all silos)</span></figcaption>
        </figure>
        <figure class="chart panel" id="chart-silos" data-points="0" aria-labelledby="chart-silos-caption">
          <figcaption id="chart-silos-caption"><strong>Load per silo</strong> <span class="muted">(readings/s)</span></figcaption>
        </figure>
      </div>
      <h2 id="partitions-heading">Partition map</h2>
      <div class="table-wrap">
        <table class="data" id="partition-map" aria-labelledby="partitions-heading">
          <thead><tr><th scope="col" class="num">Partition</th><th scope="col">Silo</th><th scope="col">Active since</th>
            <th scope="col" class="num" title="Everything below is durably applied">Committed</th><th scope="col" class="num" title="Read and applied by the reader">Applied</th>
            <th scope="col" class="num">End</th><th scope="col" class="num" title="End minus committed">Lag</th>
            <th scope="col" class="num">Readings</th><th scope="col" class="num">Sensors</th><th scope="col">Last checkpoint</th></tr></thead>
          <tbody id="partition-body"><tr><td colspan="10" class="muted">Loading…</td></tr></tbody>
        </table>
      </div>
    </section>`;

  const $ = (selector) => root.querySelector(selector);
  const errorLine = $('#cluster-error');
  const colours = new Map(); // silo id -> colour, stable while the page is open
  const names = new Map(); // silo id -> silo name, from the last cluster response
  let metrics = { points: [], silos: [], historySeconds: 0 };
  let timer = 0;
  let closed = false;
  let inFlight = false;

  function colourOf(siloId) {
    if (!colours.has(siloId)) colours.set(siloId, PALETTE[colours.size % PALETTE.length]);
    return colours.get(siloId);
  }

  function swatch(siloId) {
    return `<span class="swatch" style="background:${colourOf(siloId)}" aria-hidden="true"></span>`;
  }

  // --- charts ---------------------------------------------------------------------------------------------------
  const charts = {
    readings: { el: $('#chart-readings'), plot: null, key: '' },
    alerts: { el: $('#chart-alerts'), plot: null, key: '' },
    silos: { el: $('#chart-silos'), plot: null, key: '' },
  };
  const resize = new ResizeObserver(() => {
    for (const chart of Object.values(charts)) chart.plot?.setSize({ width: chartWidth(chart.el), height: CHART_HEIGHT });
  });

  function chartWidth(el) {
    return Math.max(260, el.clientWidth - 2);
  }

  function timeValue(_u, v) {
    return v == null ? '—' : new Date(v * 1000).toLocaleTimeString();
  }

  function plot(chart, key, series, data) {
    if (!chart.plot || chart.key !== key) {
      chart.plot?.destroy();
      chart.key = key;
      chart.plot = new uPlot({
        width: chartWidth(chart.el),
        height: CHART_HEIGHT,
        scales: {
          // At least a minute wide, so a young history is not stretched over the whole width.
          x: { time: true, range: (_u, min, max) => (min == null || max == null ? [Date.now() / 1000 - 60, Date.now() / 1000] : [Math.min(min, max - 60), max]) },
          y: { range: (_u, _min, max) => [0, Math.max(1, max ?? 0) * 1.1] },
        },
        series: [{ value: timeValue }, ...series],
        axes: [{}, { values: (_u, values) => values.map((v) => num(v)), size: 56 }],
      }, data, chart.el);
      resize.observe(chart.el);
    } else {
      chart.plot.setData(data);
    }
    chart.el.dataset.points = String(data[0].length);
    chart.el.dataset.max = String(Math.max(0, ...data.slice(1).flat().filter((v) => v != null)));
  }

  function drawCharts() {
    const points = metrics.points;
    const xs = points.map((p) => Date.parse(p.time) / 1000);
    plot(charts.readings, 'readings', [
      { label: 'readings/s', stroke: '#1f5fbf', width: 2, fill: 'rgba(31,95,191,0.12)', value: (_u, v) => rate(v, 'readings/s') },
    ], [xs, points.map((p) => p.readingsPerSecond)]);
    plot(charts.alerts, 'alerts', [
      { label: 'alerts/min', stroke: '#a4001d', width: 2, fill: 'rgba(164,0,29,0.10)', value: (_u, v) => rate(v, 'alerts/min') },
    ], [xs, points.map((p) => p.alertsPerMinute)]);
    const silos = metrics.silos;
    const labels = silos.map((id) => (names.get(id) ? `${names.get(id)} (${id})` : id));
    plot(charts.silos, `silos:${labels.join('\n')}`, silos.map((id, i) => ({
      label: labels[i], stroke: colourOf(id), width: 2, value: (_u, v) => rate(v, 'readings/s'),
    })), [xs, ...silos.map((id) => points.map((p) => p.readingsPerSecondBySilo[id] ?? null))]);
    $('#history-length').textContent = metrics.historySeconds ? `${num(metrics.historySeconds / 60)} min` : 'minutes';
  }

  // --- tables ---------------------------------------------------------------------------------------------------
  function siloLabel(siloId) {
    const name = names.get(siloId);
    return name ? `${esc(name)} <span class="muted small">${esc(siloId)}</span>` : esc(siloId);
  }

  function drawCluster(cluster, mqtt) {
    const now = Date.now();
    const latest = metrics.points.at(-1);
    const active = cluster.silos.filter((s) => s.status === 'active').length;
    const answered = cluster.partitionMap.filter((p) => p.owner).length;
    const totalLag = cluster.partitionMap.reduce((sum, p) => sum + (p.lag ?? 0), 0);
    $('#cluster-summary').innerHTML = `
      <dl class="facts">
        <div><dt>Silos active</dt><dd id="summary-silos">${num(active)} of ${num(cluster.silos.length)}</dd></div>
        <div><dt>Partitions with a reader</dt><dd id="summary-partitions">${num(answered)} of ${num(cluster.partitions)}</dd></div>
        <div><dt>Total lag</dt><dd>${num(totalLag)} entries</dd></div>
        <div><dt>Active grains</dt><dd id="summary-activations">${activations(cluster.activations)}</dd></div>
        <div><dt>Readings now</dt><dd>${rate(latest?.readingsPerSecond, 'readings/s')}</dd></div>
        <div><dt>Alerts now</dt><dd>${rate(latest?.alertsPerMinute, 'alerts/min')}</dd></div>
        <div><dt>MQTT devices connected</dt><dd id="summary-mqtt" title="${esc(mqtt.cluster.nodes.map((n) => `${n.node}: ${n.connected}`).join(', '))}">${num(mqtt.cluster.connected)}${mqtt.cluster.nodes.length > 1 ? ` <span class="muted small">on ${num(mqtt.cluster.nodes.length)} Api nodes</span>` : ''}</dd></div>
      </dl>`;

    names.clear();
    for (const silo of cluster.silos) names.set(silo.id, silo.name);
    for (const silo of [...cluster.silos].sort((a, b) => a.id.localeCompare(b.id))) colourOf(silo.id);
    $('#silo-body').innerHTML = cluster.silos.map((s) => `
      <tr data-silo-id="${esc(s.id)}" data-status="${esc(s.status)}">
        <th scope="row">${swatch(s.id)}<span class="silo-name">${esc(s.name)}</span>
          <div class="muted small"><span class="silo-address">${esc(s.id)}</span>${s.hostName ? ` on ${esc(s.hostName)}` : ''}</div></th>
        <td><span class="state ${STATUS_CLASS[s.status] ?? 'state-open'}">${esc(s.status)}</span></td>
        <td title="since ${esc(utc(s.startedAt))}">${duration(now - Date.parse(s.startedAt))}</td>
        <td class="silo-partitions" data-count="${s.partitions.length}">${num(s.partitions.length)}${s.partitions.length ? ` <span class="muted small">(${s.partitions.map((p) => esc(p)).join(', ')})</span>` : ''}</td>
        <td class="silo-activations">${activations(s.activations)}</td>
        <td class="num">${rate(latest?.readingsPerSecondBySilo[s.id], 'readings/s')}</td>
        <td class="num">${num(s.readingsApplied)}</td>
        <td>${time(s.lastHeartbeat)}</td>
      </tr>`).join('') || '<tr><td colspan="8" class="muted">No silo has joined the cluster.</td></tr>';

    $('#partition-body').innerHTML = cluster.partitionMap.map((p) => `
      <tr data-partition="${p.partition}" data-owner="${esc(p.owner ?? '')}" data-readings="${p.readingsApplied ?? ''}"${p.owner ? ` style="--owner:${colourOf(p.owner)}"` : ''} class="partition-row${p.owner ? ' owned' : ''}">
        <th scope="row" class="num">${p.partition}</th>
        <td>${p.owner ? `${swatch(p.owner)}${siloLabel(p.owner)}` : '<span class="muted">no answer from its reader</span>'}</td>
        <td>${time(p.activeSince)}</td>
        <td class="num">${num(p.committedOffset)}</td>
        <td class="num">${num(p.appliedOffset)}</td>
        <td class="num">${num(p.endOffset)}</td>
        <td class="num${p.lag > 0 ? ' lagging' : ''}">${num(p.lag)}</td>
        <td class="num">${num(p.readingsApplied)}</td>
        <td class="num">${num(p.sensors)}</td>
        <td>${time(p.lastCheckpointAt)}</td>
      </tr>`).join('');
  }

  async function refresh() {
    if (inFlight || closed) return;
    inFlight = true;
    try {
      const [cluster, history, mqtt] = await Promise.all([api('/api/v1/cluster'), api('/api/v1/cluster/metrics'), api('/api/v1/mqtt')]);
      if (closed) return;
      metrics = history;
      drawCluster(cluster, mqtt);
      drawCharts();
      errorLine.textContent = '';
      root.querySelector('.cluster-page').dataset.loaded = 'true';
    } catch (error) {
      if (!closed) errorLine.textContent = `The cluster could not be loaded: ${error.message}`;
    } finally {
      inFlight = false;
    }
  }

  refresh();
  timer = setInterval(() => {
    if (document.visibilityState === 'visible') refresh();
  }, REFRESH_MS);
  return () => {
    closed = true;
    clearInterval(timer);
    resize.disconnect();
    for (const chart of Object.values(charts)) chart.plot?.destroy();
  };
}
