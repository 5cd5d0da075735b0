// SentinelD's read-only web UI (docs/web-ui.md). Served by sentinelagent and
// by `sentinelfleet serve` from the copy compiled into the binary.
//
// Escaping: every value that comes from the API (process names, argv, paths,
// titles, host names: attacker-chosen) reaches the page through text() or
// el(), i.e. document.createTextNode, after visible() has written control,
// bidi and invisible characters as \uXXXX. Nothing is ever parsed as HTML
// (no DOM API that takes markup is used: assets_test checks), and links are
// built only to "#..." fragments of this page.
'use strict';

(function () {
  // Code points that must never reach a reader raw (base/escape.h
  // IsUnsafeCodePoint): C0, DEL, C1, soft hyphen, bidi and invisible format
  // characters, line/paragraph separators, specials, tag characters.
  const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]|\udb40[\udc00-\udc7f]/g;
  const SHORT = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

  function visible(v) {
    if (v === null || v === undefined) return '';
    return String(v).replace(UNSAFE, function (c) {
      if (SHORT[c]) return SHORT[c];
      if (c.length === 2) return '\\U' + c.codePointAt(0).toString(16).padStart(8, '0');
      return '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');
    });
  }

  function text(v) {
    return document.createTextNode(visible(v));
  }

  // el('td', {class: 'x'}, child...): children are nodes or values shown as text.
  function el(tag, props) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') {
        e.className = v;
      } else if (k === 'href') {
        if (typeof v !== 'string' || v.charAt(0) !== '#') throw new Error('link outside the page: ' + v);
        e.setAttribute('href', v);
      } else if (k === 'title') {
        e.title = visible(v);
      } else if (k.startsWith('data-')) {
        e.setAttribute(k, visible(v));
      } else {
        throw new Error('attribute not allowed: ' + k);
      }
    }
    for (let i = 2; i < arguments.length; i++) append(e, arguments[i]);
    return e;
  }

  function append(parent, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) {
      child.forEach(function (c) { append(parent, c); });
    } else if (child instanceof Node) {
      parent.appendChild(child);
    } else {
      parent.appendChild(text(child));
    }
  }

  function $(id) { return document.getElementById(id); }

  // Replaces the children of `node` with `items` (as append() takes them; null and false are skipped).
  function fill(node, items) {
    node.replaceChildren();
    append(node, items);
  }

  function isoTime(ms) {
    if (typeof ms !== 'number' || !isFinite(ms)) return '';
    return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
  }

  function age(ms) {
    if (typeof ms !== 'number' || !isFinite(ms)) return '';
    let s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 120) return s + ' s ago';
    if (s < 7200) return Math.round(s / 60) + ' min ago';
    if (s < 172800) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }

  function severityBadge(sev) {
    const known = ['low', 'medium', 'high', 'critical'];
    return el('span', { class: 'sev sev-' + (known.includes(sev) ? sev : 'unknown') }, sev || '?');
  }

  function statusBadge(status) {
    const cls = status === 'ok' || status === 'healthy' ? 'ok' : status === 'unknown' ? 'unknown' : 'bad';
    return el('span', { class: 'status status-' + cls }, status || '?');
  }

  // argv as one <code> per argument, so spaces inside an argument stay visible.
  function argv(list) {
    if (!Array.isArray(list)) return el('span', { class: 'muted' }, list === null || list === undefined ? '' : list);
    return el('span', { class: 'argv' }, list.map(function (a) { return el('code', { class: 'arg' }, a); }));
  }

  async function getJson(url) {
    const res = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' });
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      throw new Error(url + ': HTTP ' + res.status + ', not JSON');
    }
    return { status: res.status, body: body };
  }

  async function getText(url) {
    const res = await fetch(url, { cache: 'no-store', credentials: 'same-origin' });
    if (!res.ok) throw new Error(url + ': HTTP ' + res.status);
    return res.text();
  }

  function apiError(r, url) {
    const msg = r.body && typeof r.body.error === 'string' ? r.body.error : 'HTTP ' + r.status;
    return new Error(url + ': ' + msg);
  }

  function showError(err) {
    const p = $('error');
    p.replaceChildren(text(err && err.message ? err.message : String(err)));
    p.hidden = false;
  }

  let info = { mode: 'agent' };
  const VIEWS = ['alerts-view', 'alert-view', 'health-view', 'hosts-view'];

  function showView(id, title) {
    VIEWS.forEach(function (v) { $(v).hidden = v !== id; });
    $('error').hidden = true;
    document.title = 'SentinelD — ' + title;
    document.body.setAttribute('data-view', id);
  }

  // ---- at a glance (every view) ----

  function parseMetrics(textBody) {
    const out = [];
    textBody.split('\n').forEach(function (line) {
      if (!line || line.charAt(0) === '#') return;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (m) out.push({ name: m[1], labels: m[2] ? m[2].slice(1, -1) : '', value: Number(m[3]) });
    });
    return out;
  }

  function sumOf(samples, name) {
    return samples.filter(function (s) { return s.name === name; })
      .reduce(function (a, s) { return a + s.value; }, 0);
  }

  function glanceItem(label, value, cls) {
    return el('span', { class: 'glance-item' + (cls ? ' ' + cls : '') }, el('span', { class: 'muted' }, label + ' '), value);
  }

  async function renderGlance() {
    const items = [];
    try {
      const h = await getJson('/api/health');
      const bad = (h.body.components || []).filter(function (c) { return c.status !== 'ok'; })
        .map(function (c) { return c.name; });
      items.push(glanceItem('health', statusBadge(h.body.status)));
      if (bad.length) items.push(glanceItem('not ok', bad.join(', '), 'warn'));
    } catch (e) {
      items.push(glanceItem('health', statusBadge('unreachable')));
    }
    if (info.mode === 'console') {
      try {
        const hosts = (await getJson('/api/hosts')).body.hosts || [];
        const notOk = hosts.filter(function (x) { return x.health !== 'ok' || x.stale; }).length;
        items.push(glanceItem('hosts', String(hosts.length)));
        items.push(glanceItem('hosts not ok', String(notOk), notOk ? 'warn' : ''));
      } catch (e) { /* shown by the views */ }
    } else {
      try {
        const samples = parseMetrics(await getText('/metrics'));
        items.push(glanceItem('processes', String(sumOf(samples, 'sentinel_processes'))));
        items.push(glanceItem('alerts stored', String(sumOf(samples, 'sentinel_alerts_stored'))));
        const dlq = sumOf(samples, 'sentinel_dlq_size');
        items.push(glanceItem('dead letters', String(dlq), dlq ? 'warn' : ''));
        const lost = sumOf(samples, 'sentinel_realtime_events_lost_total');
        items.push(glanceItem('events lost', String(lost), lost ? 'warn' : ''));
        const last = sumOf(samples, 'sentinel_last_scan_timestamp_seconds');
        if (last) items.push(glanceItem('last scan', age(last * 1000)));
      } catch (e) { /* /metrics unreachable: the health item says so */ }
    }
    fill($('glance'), items);
  }

  // ---- the alert list ----

  const FILTERS = ['severity', 'status', 'rule', 'host', 'since', 'until', 'q'];

  function alertsHash(params) {
    const p = new URLSearchParams();
    FILTERS.concat(['offset']).forEach(function (k) {
      const v = params.get(k);
      if (v) p.set(k, v);
    });
    const s = p.toString();
    return '#' + s;
  }

  function processesSummary(procs) {
    if (!Array.isArray(procs) || procs.length === 0) return '';
    return procs.slice(0, 3).map(function (p) {
      return 'pid ' + visible(p.pid) + ' ' + visible(p.name) + (p.exe_path ? ' (' + visible(p.exe_path) + ')' : '');
    }).join('; ') + (procs.length > 3 ? '; +' + (procs.length - 3) + ' more' : '');
  }

  function alertRow(a) {
    const cells = [
      el('td', { class: 'num' }, el('a', { href: '#alert=' + encodeURIComponent(a.id) }, '#' + a.id)),
      el('td', { class: 'time' }, isoTime(a.alert_time)),
      el('td', null, severityBadge(a.severity))
    ];
    if (info.mode === 'console') cells.push(el('td', { class: 'host' }, a.host_id));
    cells.push(el('td', { class: 'rule' }, a.rule_id),
      el('td', null, a.status),
      el('td', { class: 'title' }, el('a', { href: '#alert=' + encodeURIComponent(a.id) }, a.title)),
      el('td', { class: 'procs' }, processesSummary(a.affected_processes)));
    return el('tr', { class: 'alert-row', 'data-id': a.id, 'data-severity': a.severity }, cells);
  }

  function fillForm(params) {
    const form = $('filters');
    FILTERS.forEach(function (k) {
      if (form.elements[k]) form.elements[k].value = params.get(k) || '';
    });
  }

  async function showAlerts(params) {
    showView('alerts-view', 'alerts');
    fillForm(params);
    const head = ['id', 'time', 'severity'];
    if (info.mode === 'console') head.push('host');
    head.push('rule', 'status', 'title', 'processes');
    fill($('alerts-head'), head.map(function (h) { return el('th', null, h); }));
    const api = new URLSearchParams();
    FILTERS.concat(['offset']).forEach(function (k) {
      const v = params.get(k);
      if (v) api.set(k, v);
    });
    api.set('limit', '100');
    const url = '/api/alerts?' + api.toString();
    const r = await getJson(url);
    if (r.status !== 200) throw apiError(r, url);
    const alerts = r.body.alerts || [];
    const offset = r.body.offset || 0;
    fill($('alerts-body'), alerts.map(alertRow));
    $('alerts-summary').replaceChildren(text(alerts.length === 0 ? 'No alerts match.'
      : 'Alerts ' + (offset + 1) + '–' + (offset + alerts.length) + ', newest first.'));
    const older = new URLSearchParams(params);
    older.set('offset', String(offset + alerts.length));
    $('older').hidden = !r.body.more;
    $('older').setAttribute('href', alertsHash(older));
    const newer = new URLSearchParams(params);
    newer.set('offset', String(Math.max(0, offset - (r.body.limit || 100))));
    $('newer').hidden = offset === 0;
    $('newer').setAttribute('href', alertsHash(newer));
  }

  // ---- one alert ----

  function field(dl, name, value) {
    dl.appendChild(el('dt', null, name));
    dl.appendChild(el('dd', null, value));
  }

  function processTable(procs) {
    if (!Array.isArray(procs) || procs.length === 0) return el('p', { class: 'muted' }, 'No affected process recorded.');
    return el('table', { class: 'procs-table' },
      el('thead', null, el('tr', null, el('th', null, 'pid'), el('th', null, 'name'), el('th', null, 'executable'))),
      el('tbody', null, procs.map(function (p) {
        return el('tr', { class: 'proc-row' }, el('td', { class: 'num' }, p.pid), el('td', null, p.name), el('td', null, p.exe_path));
      })));
  }

  function alertDetail(a, hostAlert) {
    const dl = el('dl', { class: 'fields' });
    field(dl, 'time', isoTime(a.alert_time));
    field(dl, 'severity', severityBadge(a.severity));
    field(dl, 'rule', a.rule_id);
    field(dl, 'status', a.status);
    if (hostAlert) {
      field(dl, 'host', hostAlert.host_id);
      field(dl, 'alert id on the host', hostAlert.alert_id);
      field(dl, 'received', isoTime(hostAlert.received_at_ms));
    }
    field(dl, 'description', a.description);
    field(dl, 'processes', a.process_count);
    if (a.rule_version !== undefined) field(dl, 'rule version', a.rule_version);
    if (a.scan_id !== undefined) field(dl, 'scan', a.scan_id);
    const raw = a.raw_data === undefined ? null : el('details', null, el('summary', null, 'The finding as the rule returned it'),
      el('pre', { class: 'raw' }, JSON.stringify(a.raw_data, null, 2)));
    return [el('h2', { class: 'alert-title' }, '#' + (hostAlert ? hostAlert.id : a.id) + ' ', a.title), dl,
      el('h3', null, 'Affected processes'), processTable(a.affected_processes), raw];
  }

  function treeNode(n) {
    const head = el('div', { class: 'node' + (n.is_target ? ' target' : ''), 'data-pid': n.pid });
    append(head, [el('span', { class: 'pid' }, 'pid ' + visible(n.pid)), ' ',
      el('span', { class: 'name' }, n.name === null || n.name === undefined ? '?' : n.name)]);
    if (n.is_target) append(head, [' ', el('span', { class: 'target-mark' }, 'matched process')]);
    const meta = [];
    if (n.user_name || n.user_id !== null && n.user_id !== undefined) meta.push('user ' + visible(n.user_name || n.user_id));
    if (n.start_time) meta.push('started ' + isoTime(n.start_time));
    if (n.exited_at) meta.push('exited ' + isoTime(n.exited_at));
    if (n.exit_code !== null && n.exit_code !== undefined) meta.push('exit code ' + visible(n.exit_code));
    if (Array.isArray(n.sources)) meta.push('from ' + n.sources.map(visible).join(' + '));
    append(head, el('div', { class: 'meta muted' }, meta.join(' · ')));
    if (n.exe_path) append(head, el('div', { class: 'exe' }, el('span', { class: 'muted' }, 'exe '), el('code', null, n.exe_path)));
    if (n.command_line !== null && n.command_line !== undefined) append(head, el('div', { class: 'cmd' }, el('span', { class: 'muted' }, 'argv '), argv(n.command_line)));
    if (Array.isArray(n.execs) && n.execs.length > 1) {
      append(head, el('ol', { class: 'execs' }, n.execs.map(function (x) {
        return el('li', null, el('span', { class: 'muted' }, isoTime(x.time) + ' ran '), el('code', null, x.exe_path), ' ', argv(x.command_line));
      })));
    }
    if (Array.isArray(n.alerts) && n.alerts.length) {
      append(head, el('div', { class: 'node-alerts' }, n.alerts.map(function (a) {
        return el('a', { class: 'node-alert', href: '#alert=' + encodeURIComponent(a.id) }, severityBadge(a.severity), ' #' + visible(a.id) + ' ', a.rule_id);
      })));
    }
    const li = el('li', null, head);
    const kids = Array.isArray(n.children) ? n.children : [];
    if (kids.length || n.children_omitted) {
      const ul = el('ul', null, kids.map(treeNode));
      if (n.children_omitted) ul.appendChild(el('li', { class: 'omitted' }, el('div', { class: 'node muted' }, visible(n.children_omitted) + ' more children not shown')));
      li.appendChild(ul);
    }
    return li;
  }

  async function renderTree(id) {
    const box = $('tree');
    if (info.mode === 'console') return;
    box.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
    const url = '/api/alerts/' + encodeURIComponent(id) + '/tree';
    const r = await getJson(url);
    if (r.status !== 200) {
      box.replaceChildren(el('p', { class: 'muted' }, r.body && r.body.error ? r.body.error : 'No tree: HTTP ' + r.status));
      return;
    }
    const t = r.body;
    const parts = [];
    if (t.truncated) parts.push(el('p', { class: 'warn' }, 'The tree was cut at its size limits; some processes are not shown.'));
    if (t.root) parts.push(el('ul', { class: 'tree' }, treeNode(t.root)));
    else parts.push(el('p', { class: 'muted' }, 'The store holds no process for this alert.'));
    fill(box, parts);
  }

  async function showAlert(id) {
    showView('alert-view', 'alert #' + id);
    $('alert-detail').replaceChildren();
    $('tree').replaceChildren();
    const url = '/api/alerts/' + encodeURIComponent(id);
    const r = await getJson(url);
    if (r.status !== 200) throw apiError(r, url);
    if (info.mode === 'console') {
      // The host's alert as it was sent (native or OCSF), with the fields the console normalised.
      const sent = r.body.alert && typeof r.body.alert === 'object' ? r.body.alert : {};
      const a = Object.assign({}, sent, {
        title: r.body.title, severity: r.body.severity, rule_id: r.body.rule_id, alert_time: r.body.alert_time
      });
      delete a.raw_data;
      fill($('alert-detail'), [alertDetail(a, r.body), el('details', null,
        el('summary', null, 'The alert as the host sent it'), el('pre', { class: 'raw' }, JSON.stringify(r.body.alert, null, 2)))]);
      $('tree').replaceChildren(el('p', { class: 'tree-note' },
        'The console stores the alerts of every host, not their process history. The full process tree is on host ',
        el('code', null, r.body.host_id), ': ', el('code', null, 'sentinelcli alerts show ' + visible(r.body.alert_id) + ' --tree')));
      return;
    }
    fill($('alert-detail'), alertDetail(r.body, null));
    await renderTree(id);
  }

  // ---- health, metrics, hosts ----

  const GLANCE_METRICS = [
    'sentinel_collector_up', 'sentinel_scans_total', 'sentinel_processes', 'sentinel_last_scan_duration_seconds',
    'sentinel_detection_cycles_total', 'sentinel_rule_runs_total', 'sentinel_alerts_stored', 'sentinel_alerts_created_total',
    'sentinel_deliveries_total', 'sentinel_sink_circuit_state', 'sentinel_dlq_size', 'sentinel_realtime_events_lost_total',
    'sentinel_agent_uptime_seconds'];

  async function showHealth() {
    showView('health-view', 'health');
    const h = await getJson('/api/health');
    if (!h.body || !Array.isArray(h.body.components)) throw apiError(h, '/api/health');
    fill($('health-body'), h.body.components.map(function (c) {
      return el('tr', { class: 'component', 'data-name': c.name }, el('td', null, c.name), el('td', null, statusBadge(c.status)), el('td', null, c.detail));
    }));
    $('metrics-part').hidden = info.mode === 'console';
    if (info.mode === 'console') return;
    const raw = await getText('/metrics');
    const samples = parseMetrics(raw).filter(function (s) {
      return GLANCE_METRICS.includes(s.name) && !(s.name === 'sentinel_sink_circuit_state' && s.value === 0);
    });
    fill($('metrics-body'), samples.map(function (s) {
      return el('tr', { class: 'metric' }, el('td', null, s.name), el('td', { class: 'labels' }, s.labels), el('td', { class: 'num' }, String(s.value)));
    }));
    $('metrics-raw').replaceChildren(text(raw));
  }

  async function showHosts() {
    showView('hosts-view', 'hosts');
    const r = await getJson('/api/hosts');
    if (r.status !== 200) throw apiError(r, '/api/hosts');
    fill($('hosts-body'), (r.body.hosts || []).map(function (h) {
      return el('tr', { class: 'host-row', 'data-host': h.host_id },
        el('td', null, h.host_id), el('td', null, h.hostname),
        el('td', null, statusBadge(h.stale ? 'stale' : h.health)), el('td', null, h.version),
        el('td', null, h.last_scan), el('td', { class: 'num' }, h.rules_count),
        el('td', null, age(h.seen_at_ms)),
        el('td', null, el('a', { href: '#host=' + encodeURIComponent(h.host_id) }, 'alerts')));
    }));
  }

  // ---- routing ----

  async function route() {
    document.body.setAttribute('data-state', 'loading');
    const params = new URLSearchParams(location.hash.slice(1));
    try {
      if (params.get('alert')) {
        await showAlert(params.get('alert'));
      } else if (params.get('view') === 'health') {
        await showHealth();
      } else if (params.get('view') === 'hosts' && info.mode === 'console') {
        await showHosts();
      } else {
        await showAlerts(params);
      }
      document.body.setAttribute('data-state', 'ready');
    } catch (e) {
      showError(e);
      document.body.setAttribute('data-state', 'error');
    }
    renderGlance().catch(function () {});
  }

  function onSubmit(ev) {
    ev.preventDefault();
    const form = $('filters');
    const p = new URLSearchParams();
    FILTERS.forEach(function (k) {
      const f = form.elements[k];
      if (f && f.value.trim()) p.set(k, f.value.trim());
    });
    location.hash = alertsHash(p);
  }

  async function start() {
    $('filters').addEventListener('submit', onSubmit);
    $('reset').addEventListener('click', function (ev) {
      ev.preventDefault();
      location.hash = '#';
    });
    window.addEventListener('hashchange', route);
    try {
      const r = await getJson('/api/info');
      if (r.status === 200 && r.body) info = r.body;
    } catch (e) { /* an agent without /api/info: the defaults */ }
    $('mode').replaceChildren(text(info.mode === 'console' ? 'fleet console' : info.hostname ? 'on ' + visible(info.hostname) : ''));
    $('nav-hosts').hidden = info.mode !== 'console';
    $('host-filter').hidden = info.mode !== 'console';
    await route();
  }

  document.addEventListener('DOMContentLoaded', start);
})();
