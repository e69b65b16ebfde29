// Sensors: search and paging over the sensor list (id, location, model, last seen, latest values, late count).
import { api, qs } from '../api.js';
import { esc, num, time, withUnit } from '../format.js';

const PAGE_SIZES = [25, 50, 100, 200];

const OPERATOR = ' <span class="badge operator-set" title="set by an operator">operator</span>';

export function mount(root, _params, query) {
  document.title = 'Sensors · OrleansIot';
  let search = query.get('search') ?? '';
  let limit = PAGE_SIZES.includes(Number(query.get('limit'))) ? Number(query.get('limit')) : 50;
  let offset = Math.max(0, Number(query.get('offset')) || 0);
  root.innerHTML = `
    <section class="page sensors-page">
      <h1>Sensors</h1>
      <form class="filters" id="sensor-search" role="search" aria-label="Search sensors">
        <label>Search
          <input id="sensor-query" name="search" type="search" placeholder="id, location or model" autocomplete="off" value="${esc(search)}" />
        </label>
        <label>Per page
          <select id="sensor-limit" name="limit">${PAGE_SIZES.map((n) => `<option${n === limit ? ' selected' : ''}>${n}</option>`).join('')}</select>
        </label>
      </form>
      <p id="sensors-error" class="error" role="alert"></p>
      <div class="table-wrap">
        <table class="data sensors-table">
          <caption class="visually-hidden">Sensors by id</caption>
          <thead><tr><th scope="col">Sensor</th><th scope="col">Location</th><th scope="col">Model</th><th scope="col">Last seen</th>
            <th scope="col">Latest values</th><th scope="col" class="num">Late readings</th></tr></thead>
          <tbody id="sensors-body"><tr><td colspan="6" class="muted">Loading…</td></tr></tbody>
        </table>
      </div>
      <nav class="pager" aria-label="Pages">
        <button type="button" class="secondary" id="page-prev">Previous</button>
        <span id="page-info" aria-live="polite"></span>
        <button type="button" class="secondary" id="page-next">Next</button>
      </nav>
    </section>`;
  const body = root.querySelector('#sensors-body');
  const info = root.querySelector('#page-info');
  const prev = root.querySelector('#page-prev');
  const next = root.querySelector('#page-next');
  const errorLine = root.querySelector('#sensors-error');
  const input = root.querySelector('#sensor-query');
  let request = 0;
  let debounce = 0;
  let timer = 0;

  async function load() {
    const mine = ++request;
    history.replaceState(null, '', `#/sensors${qs({ search, offset: offset || '', limit: limit === 50 ? '' : limit })}`);
    try {
      const page = await api(`/api/v1/sensors${qs({ search, offset, limit })}`);
      if (mine !== request) return;
      errorLine.textContent = '';
      body.innerHTML = page.items.map((s) => `
        <tr data-sensor-id="${esc(s.id)}">
          <th scope="row"><a href="#/sensors/${encodeURIComponent(s.id)}">${esc(s.id)}</a></th>
          <td>${esc(s.metadata?.location ?? '')}${s.operatorMetadata?.location != null ? OPERATOR : ''}</td>
          <td>${esc(s.metadata?.model ?? '')}${s.operatorMetadata?.model != null ? OPERATOR : ''}</td>
          <td>${s.lastSeen ? time(s.lastSeen) : '<span class="muted">no reading yet</span>'}</td>
          <td class="latest">${Object.entries(s.latest ?? {}).map(([m, v]) => `<span class="metric"><span class="muted">${esc(m)}</span> ${esc(withUnit(v, m))}</span>`).join(' ')}</td>
          <td class="num">${num(s.lateCount)}</td>
        </tr>`).join('') || `<tr><td colspan="6" class="muted">${search ? 'No sensor matches.' : 'No sensor has posted yet.'}</td></tr>`;
      const first = page.total === 0 ? 0 : page.offset + 1;
      const last = Math.min(page.total, page.offset + page.items.length);
      info.textContent = `${num(first)}–${num(last)} of ${num(page.total)} sensors`;
      info.dataset.total = String(page.total);
      prev.disabled = offset === 0;
      next.disabled = last >= page.total;
    } catch (error) {
      if (mine === request) errorLine.textContent = `Sensors could not be loaded: ${error.message}`;
    }
  }

  input.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      search = input.value.trim();
      offset = 0;
      load();
    }, 250);
  });
  root.querySelector('#sensor-limit').addEventListener('change', (e) => {
    limit = Number(e.target.value);
    offset = 0;
    load();
  });
  root.querySelector('#sensor-search').addEventListener('submit', (e) => e.preventDefault());
  prev.addEventListener('click', () => {
    offset = Math.max(0, offset - limit);
    load();
  });
  next.addEventListener('click', () => {
    offset += limit;
    load();
  });

  load();
  // Last seen and latest values come from the checkpoints: refresh them while the page is open.
  timer = setInterval(() => {
    if (document.visibilityState === 'visible') load();
  }, 5000);
  return () => {
    clearInterval(timer);
    clearTimeout(debounce);
    request++;
  };
}
