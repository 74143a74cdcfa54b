// eaglet's dashboard: jobs, live progress and training curves, benchmark charts, artifacts.
// Plain ES module over the HTTP API (the same API any client uses); no framework, no build step.
// Text from the server is always set with textContent, never parsed as HTML.
import { CurveChart, MetricsStore } from '/charts.js';
import { $, fmtNum, fmtTime } from '/format.js';
import { showResult } from '/results.js';

const FINISHED = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);
const LOG_LINES = 500;

const state = {
  kinds: /** @type {any[]} */ ([]),
  jobs: /** @type {Map<string, any>} */ (new Map()),
  selected: /** @type {string | undefined} */ (undefined),
  stream: /** @type {EventSource | undefined} */ (undefined),
  jobsStream: /** @type {EventSource | undefined} */ (undefined),
};

class Unauthorized extends Error {}

async function api(path, init = {}) {
  const headers = {
    accept: 'application/json',
    ...(init.body ? { 'content-type': 'application/json' } : {}),
  };
  const res = await fetch(path, {
    ...init,
    headers: { ...headers, ...init.headers },
    credentials: 'same-origin',
  });
  if (res.status === 401) {
    showAuth();
    throw new Unauthorized();
  }
  const text = await res.text();
  const body = text ? JSON.parse(text) : undefined;
  if (!res.ok)
    throw Object.assign(new Error(body?.error?.message ?? res.statusText), { status: res.status, body });
  return body;
}

// ---- sign-in (only when the server has a token) ----

function showAuth() {
  $('auth').hidden = false;
}

$('auth-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    await api('/api/session', {
      method: 'POST',
      body: JSON.stringify({ token: /** @type {HTMLInputElement} */ ($('auth-token')).value }),
    });
    $('auth').hidden = true;
    await start();
  } catch (err) {
    $('auth-error').textContent = err instanceof Unauthorized ? 'wrong token' : String(err.message);
  }
});

// ---- job list ----

function progressSummary(job) {
  const ps = Object.values(job.progress ?? {});
  const p = ps.at(-1);
  if (!p || p.total === undefined || p.total === 0) return undefined;
  return Math.min(1, p.done / p.total);
}

function renderJobList() {
  const list = $('job-list');
  const jobs = [...state.jobs.values()].sort((a, b) => (a.id < b.id ? 1 : -1));
  list.replaceChildren(
    ...jobs.map((job) => {
      const li = document.createElement('li');
      li.className = `job${job.id === state.selected ? ' selected' : ''}`;
      li.dataset.id = job.id;
      li.dataset.status = job.status;
      const title = document.createElement('span');
      title.className = 'job-title';
      title.textContent = job.name ? `${job.kind}: ${job.name}` : job.kind;
      const status = document.createElement('span');
      status.className = `status ${job.status}`;
      status.textContent = job.status;
      const meta = document.createElement('span');
      meta.className = 'muted small';
      meta.textContent = `${job.id} · ${fmtTime(job.createdAt)}`;
      li.append(title, status, meta);
      const frac = progressSummary(job);
      if (frac !== undefined && !FINISHED.has(job.status)) {
        const bar = document.createElement('progress');
        bar.max = 1;
        bar.value = frac;
        li.append(bar);
      }
      li.addEventListener('click', () => selectJob(job.id));
      return li;
    }),
  );
}

function watchJobs() {
  state.jobsStream?.close();
  const es = new EventSource('/api/stream');
  es.addEventListener('job', (m) => {
    const job = JSON.parse(m.data);
    state.jobs.set(job.id, job);
    renderJobList();
  });
  state.jobsStream = es;
}

// ---- new job form ----

function fillKinds() {
  const select = /** @type {HTMLSelectElement} */ ($('job-kind'));
  select.replaceChildren(
    ...state.kinds.map((k) => {
      const o = document.createElement('option');
      o.value = k.kind;
      o.textContent = k.title;
      return o;
    }),
  );
  select.addEventListener('change', () => showKind(select.value));
  if (state.kinds[0]) showKind(state.kinds[0].kind);
}

function showKind(kind) {
  const k = state.kinds.find((x) => x.kind === kind);
  $('job-kind-description').textContent = k?.description ?? '';
  /** @type {HTMLTextAreaElement} */ ($('job-config')).value = JSON.stringify(k?.example ?? {}, null, 2);
  $('job-errors').replaceChildren();
}

$('job-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const errors = $('job-errors');
  errors.replaceChildren();
  const say = (text) => {
    const li = document.createElement('li');
    li.textContent = text;
    errors.append(li);
  };
  let config;
  try {
    config = JSON.parse(/** @type {HTMLTextAreaElement} */ ($('job-config')).value);
  } catch (err) {
    say(`config is not valid JSON: ${err.message}`);
    return;
  }
  const name = /** @type {HTMLInputElement} */ ($('job-name')).value.trim();
  const kind = /** @type {HTMLSelectElement} */ ($('job-kind')).value;
  try {
    const job = await api('/api/jobs', {
      method: 'POST',
      body: JSON.stringify({ kind, ...(name ? { name } : {}), config }),
    });
    state.jobs.set(job.id, job);
    renderJobList();
    selectJob(job.id);
  } catch (err) {
    const issues = err.body?.error?.issues;
    if (issues?.length) for (const i of issues) say(`${i.path || i.in}: ${i.reason}`);
    else say(err.message);
  }
});

// ---- one job ----

/** Everything the detail view shows for the selected job, rebuilt from its event stream. */
let view;

function newView(id) {
  const metrics = new MetricsStore();
  const extra = new Map();
  return {
    id,
    metrics,
    charts: [
      new CurveChart($('chart-loss'), 'loss', () => metrics.keys('loss')),
      new CurveChart($('chart-acc'), 'accuracy (acc_i: draft position i)', () => metrics.keys('acc')),
    ],
    extra,
    progress: new Map(),
    log: /** @type {string[]} */ ([]),
    drawQueued: false,
    artifactsShown: -1,
    resultShown: false,
  };
}

function selectJob(id) {
  state.selected = id;
  history.replaceState(null, '', `#job=${id}`);
  renderJobList();
  state.stream?.close();
  view = newView(id);
  $('detail-empty').hidden = true;
  $('job-detail').hidden = false;
  for (const s of ['d-training', 'd-bench', 'd-validation']) $(s).hidden = true;
  for (const c of ['chart-loss', 'chart-acc']) {
    $(c).replaceChildren();
    $(c).dataset.points = '0';
  }
  $('chart-extra').replaceChildren();
  $('chart-throughput').replaceChildren();
  $('chart-acceptance').replaceChildren();
  $('d-progress').replaceChildren();
  $('d-log').textContent = '';
  $('d-artifacts').replaceChildren();
  /** @type {HTMLAnchorElement} */ ($('d-log-link')).href = `/api/jobs/${id}/logs`;

  const es = new EventSource(`/api/jobs/${id}/stream`);
  es.addEventListener('job', (m) => {
    if (view.id !== id) return;
    const job = JSON.parse(m.data);
    state.jobs.set(job.id, { ...job, result: undefined });
    renderJob(job);
    renderJobList();
  });
  es.onmessage = (m) => {
    if (view.id === id) onEvent(JSON.parse(m.data));
  };
  es.addEventListener('end', () => es.close());
  state.stream = es;
}

function renderJob(job) {
  $('d-title').textContent = `${job.kind}${job.name ? `: ${job.name}` : ''} · ${job.id}`;
  const status = $('d-status');
  status.textContent = job.status;
  status.className = `status ${job.status}`;
  $('d-cancel').hidden = FINISHED.has(job.status) || job.status === 'cancelling';
  $('d-retry').hidden = !FINISHED.has(job.status);
  const times = [`created ${new Date(job.createdAt).toLocaleString()}`];
  if (job.startedAt) times.push(`started ${fmtTime(job.startedAt)}`);
  if (job.finishedAt) {
    times.push(`finished ${fmtTime(job.finishedAt)}`);
    if (job.startedAt)
      times.push(`${((Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000).toFixed(1)} s`);
  }
  $('d-times').textContent = times.join(' · ');
  $('d-error').textContent = job.error
    ? `${job.error.code}: ${job.error.message}${job.error.hint ? ` (${job.error.hint})` : ''}`
    : '';
  $('d-config').textContent = JSON.stringify(job.config, null, 2);
  for (const p of Object.values(job.progress ?? {})) showProgress(p);
  if (job.artifacts.length !== view.artifactsShown) loadArtifacts(job);
  if (job.result !== undefined) showResult(job);
}

function onEvent(stored) {
  const e = stored.event;
  switch (e.type) {
    case 'progress':
      showProgress(e);
      return;
    case 'metrics':
      if (e.split === 'bench') return;
      view.metrics.add(e);
      queueDraw();
      addLog(
        stored.time,
        `[${e.split} step ${e.step}] ${Object.entries(e.values)
          .map(([k, v]) => `${k}=${fmtNum(v)}`)
          .join(' ')}`,
      );
      return;
    case 'log':
      addLog(stored.time, `${e.level === 'info' ? '' : `${e.level}: `}${e.message}`);
      return;
    case 'error':
      addLog(stored.time, `error [${e.code}]: ${e.message}`);
      return;
    case 'checkpoint':
      addLog(stored.time, `checkpoint step ${e.step}: ${e.path}`);
      return;
    case 'artifact':
      addLog(stored.time, `${e.kind}: ${e.path}`);
      return;
    case 'done':
      addLog(stored.time, e.stopped ? 'stopped at a safe point' : 'done');
      return;
  }
}

function addLog(time, text) {
  view.log.push(`${new Date(time).toLocaleTimeString()} ${text}`);
  if (view.log.length > LOG_LINES) view.log.splice(0, view.log.length - LOG_LINES);
  const pre = $('d-log');
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = view.log.join('\n');
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

function showProgress(p) {
  let row = view.progress.get(p.task);
  if (!row) {
    const div = document.createElement('div');
    div.className = 'progress';
    div.dataset.task = p.task;
    const label = document.createElement('span');
    const bar = document.createElement('progress');
    const text = document.createElement('span');
    text.className = 'muted small';
    div.append(label, bar, text);
    $('d-progress').append(div);
    row = { label, bar, text, first: { done: p.done, t: Date.now() } };
    view.progress.set(p.task, row);
  }
  row.label.textContent = p.task;
  if (p.total) {
    row.bar.max = p.total;
    row.bar.value = Math.min(p.done, p.total);
  } else row.bar.removeAttribute('value');
  // Rate and ETA from what this page has seen; none once the task is complete.
  const complete = p.total !== undefined && p.done >= p.total;
  const dt = (Date.now() - row.first.t) / 1000;
  const rate = !complete && dt > 0.5 ? (p.done - row.first.done) / dt : 0;
  const eta = rate > 0 && p.total ? ` · ETA ${Math.max(0, Math.round((p.total - p.done) / rate))} s` : '';
  const pct = p.total ? ` (${((100 * p.done) / p.total).toFixed(1)}%)` : '';
  row.text.textContent = `${fmtNum(p.done)}${p.total ? `/${fmtNum(p.total)}` : ''} ${p.unit ?? ''}${pct}${rate > 0 ? ` · ${fmtNum(rate)}/s` : ''}${eta}${p.message ? ` · ${p.message}` : ''}`;
}

function queueDraw() {
  if (view.drawQueued) return;
  view.drawQueued = true;
  requestAnimationFrame(() => {
    view.drawQueued = false;
    $('d-training').hidden = false;
    for (const c of view.charts) c.update(view.metrics);
    for (const n of view.metrics.extraNames()) {
      let chart = view.extra.get(n);
      if (!chart) {
        const el = document.createElement('div');
        el.className = 'chart';
        el.dataset.chart = n;
        $('chart-extra').append(el);
        chart = new CurveChart(el, n, () => view.metrics.keys(n));
        view.extra.set(n, chart);
      }
      chart.update(view.metrics);
    }
  });
}

async function loadArtifacts(job) {
  view.artifactsShown = job.artifacts.length;
  const ul = $('d-artifacts');
  if (job.artifacts.length === 0) {
    ul.replaceChildren(
      Object.assign(document.createElement('li'), { className: 'muted', textContent: 'none yet' }),
    );
    return;
  }
  let list;
  try {
    list = (await api(`/api/jobs/${job.id}/artifacts`)).artifacts;
  } catch {
    return;
  }
  ul.replaceChildren(
    ...list.map((a) => {
      const li = document.createElement('li');
      const kind = document.createElement('span');
      kind.className = 'tag';
      kind.textContent = a.kind;
      const link = document.createElement('a');
      link.textContent = a.path;
      if (a.exists) {
        link.href = a.url;
        link.target = '_blank';
        link.rel = 'noopener';
      }
      li.append(kind, ' ', link);
      if (a.description) li.append(` · ${a.description}`);
      if (!a.exists) li.append(' (missing)');
      return li;
    }),
  );
}

$('d-cancel').addEventListener('click', async () => {
  if (state.selected) await api(`/api/jobs/${state.selected}/cancel`, { method: 'POST' }).catch(() => {});
});
$('d-retry').addEventListener('click', async () => {
  if (!state.selected) return;
  const job = await api(`/api/jobs/${state.selected}/retry`, { method: 'POST' }).catch(() => undefined);
  if (job) {
    state.jobs.set(job.id, job);
    selectJob(job.id);
  }
});

// ---- start ----

async function start() {
  const info = await api('/api');
  $('server-info').textContent = `v${info.version} · roots: ${info.roots.join(', ')}`;
  state.kinds = (await api('/api/kinds')).kinds;
  fillKinds();
  for (const job of (await api('/api/jobs')).jobs) state.jobs.set(job.id, job);
  renderJobList();
  watchJobs();
  const m = /#job=([\w-]+)/.exec(location.hash);
  if (m && state.jobs.has(m[1])) selectJob(m[1]);
}

(async () => {
  const token = new URLSearchParams(location.search).get('token');
  if (token) {
    // Trade the token for an HttpOnly cookie and take it out of the address bar and history.
    await api('/api/session', { method: 'POST', body: JSON.stringify({ token }) }).catch(() => {});
    history.replaceState(null, '', location.pathname + location.hash);
  }
  await start().catch((err) => {
    if (!(err instanceof Unauthorized))
      $('detail-empty').textContent = `cannot reach the API: ${err.message}`;
  });
})();
