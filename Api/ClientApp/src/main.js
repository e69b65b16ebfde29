import './style.css';
import { api, clearKey, getKey, setKey, setUnauthorizedHandler, ApiError } from './api.js';
import { startLive, stopLive } from './live.js';
import { esc } from './format.js';
import * as alerts from './pages/alerts.js';
import * as sensors from './pages/sensors.js';
import * as sensor from './pages/sensor.js';
import * as rules from './pages/rules.js';
import * as cluster from './pages/cluster.js';

// Pages reachable from the navigation; a route is [pattern, page, navigation label or null].
const routes = [
  [/^\/alerts$/, alerts, 'Alerts', '#/alerts'],
  [/^\/sensors$/, sensors, 'Sensors', '#/sensors'],
  [/^\/sensors\/([^/]+)$/, sensor, null, null],
  [/^\/rules$/, rules, 'Rules', '#/rules'],
  [/^\/cluster$/, cluster, 'Cluster', '#/cluster'],
];

const app = document.getElementById('app');
const nav = document.getElementById('nav');
const liveStatus = document.getElementById('live-status');
const changeKey = document.getElementById('change-key');
let unmount = null;

nav.innerHTML = routes.filter((r) => r[2]).map(([, , label, href]) => `<a href="${href}">${esc(label)}</a>`).join('');

function showKeyForm(message) {
  if (unmount) unmount();
  unmount = null;
  stopLive();
  changeKey.hidden = true;
  document.title = 'Sign in · OrleansIot';
  app.innerHTML = `
    <section class="key-form">
      <h1>Operator key</h1>
      <p>The dashboard needs an operator API key. It is kept for this browser tab only (session storage).</p>
      <form id="key-form">
        <label for="key-input">API key</label>
        <input id="key-input" name="key" type="password" autocomplete="current-password" required minlength="1" />
        <button type="submit">Continue</button>
        <p id="key-error" class="error" role="alert">${esc(message ?? '')}</p>
      </form>
    </section>`;
  const form = document.getElementById('key-form');
  const input = document.getElementById('key-input');
  input.focus();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    try {
      await api('/api/v1/rules', { key });
      setKey(key);
      render();
    } catch (error) {
      const text = error instanceof ApiError && error.status === 401 ? 'This key is not known to the Api.'
        : error instanceof ApiError && error.status === 403 ? 'This key is not an operator key.'
          : `The key could not be checked: ${error.message}`;
      document.getElementById('key-error').textContent = text;
    }
  });
}

setUnauthorizedHandler(() => {
  clearKey();
  showKeyForm('The Api no longer accepts the key; enter it again.');
});

changeKey.addEventListener('click', () => {
  clearKey();
  showKeyForm();
});

function render() {
  if (!getKey()) {
    showKeyForm();
    return;
  }
  changeKey.hidden = false;
  startLive(liveStatus);
  const [path, query = ''] = (location.hash.replace(/^#/, '') || '/alerts').split('?');
  let match = null;
  let page = null;
  for (const [pattern, candidate] of routes) {
    match = path.match(pattern);
    if (match) {
      page = candidate;
      break;
    }
  }
  if (!page) {
    location.replace('#/alerts');
    return;
  }
  for (const link of nav.querySelectorAll('a')) {
    const href = link.getAttribute('href').slice(1);
    if (path === href || path.startsWith(`${href}/`)) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (unmount) unmount();
  app.innerHTML = '';
  unmount = page.mount(app, match.slice(1).map(decodeURIComponent), new URLSearchParams(query)) ?? null;
}

window.addEventListener('hashchange', render);
render();
