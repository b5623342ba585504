// securelog console: a small single-page app over the query API (/v1/,
// docs/query.md). No framework, no network access but this origin; every
// value from the server is put in the page as text, never as HTML.
'use strict';

const api = '../v1/';
const severities = ['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'info', 'debug'];
const main = document.getElementById('main');
const statusBox = document.getElementById('status');
let stopView = () => {}; // ends what the current view runs (a follow stream)

// el builds an element: el('a', {href: '#'}, 'text', child...).
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat(Infinity)) {
    if (k === undefined || k === null) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function announce(msg) { statusBox.textContent = msg; }

function token() { return sessionStorage.getItem('securelog-token') || ''; }

// APIError is a refused or failed query API call.
class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function get(path, signal) {
  const headers = {Accept: 'application/json'};
  if (token()) headers.Authorization = 'Bearer ' + token();
  const r = await fetch(api + path, {headers, signal, cache: 'no-store'});
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) {
    const msg = body && body.error ? body.error.message : r.status + ' ' + r.statusText;
    if (r.status === 401 || r.status === 403) {
      showLogin(r.status === 401 ? 'Sign in with a reader token: ' + msg : 'This token may not read: ' + msg);
    }
    throw new APIError(r.status, msg);
  }
  return body;
}

function errorBox(err) {
  return el('p', {class: 'error', role: 'alert'}, err instanceof APIError ? `Error ${err.status}: ${err.message}` : String(err.message || err));
}

function hashCell(h) { return el('code', {class: 'hash', title: h || ''}, h ? h.slice(0, 16) + '…' : '—'); }

function fmtTime(t) { return t ? t.replace('T', ' ') : '—'; }

function payloadText(p) {
  if (!p) return '';
  if (p.encoding === 'text') return p.text;
  if (p.encoding === 'base64') return 'base64:' + p.base64;
  return JSON.stringify(p);
}

function setView(title, ...content) {
  stopView();
  stopView = () => {};
  main.replaceChildren(el('h2', {}, title), ...content);
  document.title = title + ' · securelog console';
  for (const a of document.querySelectorAll('nav a')) {
    const here = location.hash.split('?')[0].startsWith(a.getAttribute('href'));
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  main.focus({preventScroll: true});
}

// ---- login ----

function showLogin(msg) {
  stopView();
  stopView = () => {};
  const input = el('input', {type: 'password', name: 'token', id: 'token', autocomplete: 'current-password', required: true});
  const form = el('form', {class: 'login', method: 'post', onsubmit: async (e) => {
    e.preventDefault();
    sessionStorage.setItem('securelog-token', input.value.trim());
    try {
      await get('streams');
      renderSession();
      if (!location.hash || location.hash === '#/login') location.hash = '#/streams'; else route();
    } catch (err) {
      if (!(err instanceof APIError && (err.status === 401 || err.status === 403))) form.append(errorBox(err));
    }
  }},
  el('label', {for: 'token'}, 'Reader token', input), ' ', el('button', {type: 'submit'}, 'Sign in'));
  main.replaceChildren(el('h2', {}, 'Sign in'), msg ? el('p', {class: 'error', role: 'alert'}, msg) : '',
    el('p', {class: 'muted'}, 'The token stays in this tab (session storage) and is sent only to this server.'), form);
  document.title = 'Sign in · securelog console';
  input.focus();
}

function renderSession() {
  const s = document.getElementById('session');
  s.replaceChildren(token() ? el('button', {type: 'button', onclick: () => {
    sessionStorage.removeItem('securelog-token'); renderSession(); showLogin('Signed out.');
  }}, 'Sign out') : '');
}

// ---- streams ----

async function viewStreams() {
  setView('Streams', el('p', {class: 'muted'}, 'Loading…'));
  const data = await get('streams');
  const rows = data.streams.map(s => el('tr', {},
    el('th', {scope: 'row'}, el('a', {href: '#/events?stream=' + encodeURIComponent(s.name)}, s.name)),
    el('td', {}, s.tier),
    el('td', {class: 'num'}, s.entries),
    el('td', {class: 'num'}, s.head_seqno),
    el('td', {class: 'num'}, s.last_segment ? s.last_segment.segment_id : '—'),
    el('td', {class: 'num'}, s.last_signed_segment ? s.last_signed_segment.segment_id : '—'),
    el('td', {}, s.last_signed_segment ? hashCell(s.last_signed_segment.merkle_root) : '—'),
    el('td', {class: s.witness_status === 'current' ? 'ok' : s.witness_status === 'behind' ? 'warn' : 'muted'}, s.witness_status || 'none')));
  setView('Streams', el('table', {},
    el('caption', {class: 'visually-hidden'}, 'Streams'),
    el('thead', {}, el('tr', {}, ['Stream', 'Tier', 'Entries', 'Head seqno', 'Last segment', 'Last signed', 'Signed Merkle root', 'Witness']
      .map((h, i) => el('th', {scope: 'col', class: i >= 2 && i <= 5 ? 'num' : null}, h)))),
    el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', {colspan: 8}, 'No streams yet.')))));
}

// ---- events ----

const filterNames = ['since', 'until', 'type', 'producer', 'severity', 'order', 'limit'];

function entryRow(e, fresh) {
  return el('tr', {class: fresh ? 'new' : null, 'data-seqno': e.seqno},
    el('td', {class: 'num'}, el('a', {href: '#/entry/' + e.seqno + '?stream=' + encodeURIComponent(e.stream)}, e.seqno)),
    el('td', {class: 'mono'}, fmtTime(e.timestamp)),
    el('td', {}, e.event_type),
    el('td', {class: 'sev-' + e.severity}, e.severity),
    el('td', {}, e.producer),
    el('td', {class: 'mono'}, e.sealed && !e.opened ? el('span', {class: 'muted'}, 'sealed') : payloadText(e.payload).slice(0, 120)));
}

async function viewEvents(params) {
  const streams = (await get('streams')).streams.map(s => s.name);
  const stream = params.get('stream') || streams[0] || '';
  const field = (name, label, input) => el('label', {for: 'f-' + name}, label, input);
  const text = (name, ph) => el('input', {id: 'f-' + name, name, value: params.get(name) || '', placeholder: ph || '', size: 14});
  const sel = (name, opts) => {
    const s = el('select', {id: 'f-' + name, name}, opts.map(([v, t]) => el('option', {value: v}, t)));
    s.value = params.get(name) || opts[0][0];
    return s;
  };
  const form = el('form', {class: 'filters', 'aria-label': 'Filters', onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
    location.hash = '#/events?' + q.toString();
  }},
  field('stream', 'Stream', sel('stream', streams.map(s => [s, s]))),
  field('since', 'Since', text('since', '24h or RFC 3339')),
  field('until', 'Until', text('until', 'RFC 3339')),
  field('type', 'Event type', text('type', 'auth.* or exact')),
  field('producer', 'Producer', text('producer')),
  field('severity', 'Minimum severity', sel('severity', [['', 'any'], ...severities.map(s => [s, s])])),
  field('order', 'Order', sel('order', [['newest', 'newest first'], ['oldest', 'oldest first']])),
  field('limit', 'Rows', sel('limit', [['50', '50'], ['100', '100'], ['500', '500']])),
  el('button', {type: 'submit'}, 'Apply'));
  form.elements.stream.value = stream;

  const tbody = el('tbody', {});
  const table = el('table', {id: 'events'},
    el('caption', {class: 'visually-hidden'}, 'Events of stream ' + stream),
    el('thead', {}, el('tr', {}, ['Seqno', 'Time', 'Type', 'Severity', 'Producer', 'Payload']
      .map((h, i) => el('th', {scope: 'col', class: i === 0 ? 'num' : null}, h)))), tbody);
  const pageInfo = el('span', {class: 'muted', id: 'page-info'});
  const nextBtn = el('button', {type: 'button', id: 'next-page', disabled: true}, 'Next page');
  const firstBtn = el('button', {type: 'button', id: 'first-page', disabled: true}, 'First page');
  const followBtn = el('button', {type: 'button', id: 'follow', 'aria-pressed': 'false'}, 'Follow live');
  const followInfo = el('span', {class: 'muted', id: 'follow-info'});
  setView('Events', form, el('div', {class: 'pager'}, firstBtn, nextBtn, pageInfo, followBtn, followInfo), table);
  if (!stream) { tbody.append(el('tr', {}, el('td', {colspan: 6}, 'No streams yet.'))); return; }

  const query = new URLSearchParams();
  for (const n of filterNames) if (params.get(n)) query.set(n, params.get(n));
  let next = null, page = 0;
  const load = async (after) => {
    const q = new URLSearchParams(query);
    if (after) q.set('after', after);
    const data = await get('streams/' + encodeURIComponent(stream) + '/entries?' + q.toString());
    tbody.replaceChildren(...data.entries.map(e => entryRow(e, false)));
    if (!data.entries.length) tbody.append(el('tr', {}, el('td', {colspan: 6}, 'No entries match.')));
    next = data.next;
    page = after ? page + 1 : 1;
    nextBtn.disabled = !next;
    firstBtn.disabled = page <= 1;
    pageInfo.textContent = `page ${page}, ${data.entries.length} entries` + (next ? '' : ' (last page)');
    announce(pageInfo.textContent);
  };
  nextBtn.onclick = () => load(next).catch(err => main.append(errorBox(err)));
  firstBtn.onclick = () => load(null).catch(err => main.append(errorBox(err)));
  await load(null);

  let ctl = null;
  const stop = () => {
    if (ctl) ctl.abort();
    ctl = null;
    followBtn.setAttribute('aria-pressed', 'false');
    followBtn.textContent = 'Follow live';
  };
  stopView = stop;
  followBtn.onclick = () => {
    if (ctl) { stop(); followInfo.textContent = 'stopped'; return; }
    ctl = new AbortController();
    followBtn.setAttribute('aria-pressed', 'true');
    followBtn.textContent = 'Stop following';
    const fq = new URLSearchParams();
    for (const n of ['type', 'producer', 'severity']) if (params.get(n)) fq.set(n, params.get(n));
    let count = 0;
    followInfo.textContent = 'following…';
    follow('streams/' + encodeURIComponent(stream) + '/follow?' + fq.toString(), ctl.signal, (e) => {
      count++;
      const row = entryRow(e, true);
      if ((params.get('order') || 'newest') === 'oldest') tbody.append(row); else tbody.prepend(row);
      followInfo.textContent = `following: ${count} new`;
      announce(`${count} new entries`);
    }).then(() => { if (ctl) { followInfo.textContent = 'follow ended'; stop(); } },
      err => { if (ctl) { followInfo.textContent = 'follow failed: ' + err.message; stop(); } });
  };
}

// follow reads a Server-Sent Events stream with fetch (EventSource cannot
// send the Authorization header) and calls onEntry for each entry event.
async function follow(path, signal, onEntry) {
  const headers = {Accept: 'text/event-stream'};
  if (token()) headers.Authorization = 'Bearer ' + token();
  const r = await fetch(api + path, {headers, signal, cache: 'no-store'});
  if (!r.ok) {
    let msg = r.status + ' ' + r.statusText;
    try { msg = (await r.json()).error.message; } catch (_) { /* keep */ }
    throw new APIError(r.status, msg);
  }
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '', event = 'message', data = [];
  for (;;) {
    let chunk;
    try { chunk = await reader.read(); } catch (err) { if (signal.aborted) return; throw err; }
    if (chunk.done) return;
    buf += chunk.value;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      if (line === '') {
        if (data.length && event === 'entry') onEntry(JSON.parse(data.join('\n')));
        event = 'message'; data = [];
      } else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      else if (line.startsWith('event:')) event = line.slice(6).trim();
    }
  }
}

// ---- one entry ----

function hexToBytes(h) {
  if (typeof h !== 'string' || !/^([0-9a-f]{2})*$/.test(h)) throw new Error('not lowercase hex: ' + h);
  const b = new Uint8Array(h.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(h.substr(i * 2, 2), 16);
  return b;
}
function bytesToHex(b) { return Array.from(b, x => x.toString(16).padStart(2, '0')).join(''); }

// pathShape is merkle.PathShape: the right flags a proof for leaf index
// of a tree of size leaves has, bottom-up.
function pathShape(index, size) {
  if (index >= size) throw new Error(`leaf index ${index} is not below tree size ${size}`);
  const shape = [];
  for (let n = size, i = index; n > 1; n = Math.ceil(n / 2), i = Math.floor(i / 2)) {
    if (i % 2 === 0) { if (i + 1 < n) shape.push(true); } else shape.push(false);
  }
  return shape;
}

// verifyProof checks the inclusion proof (SPEC §6.3) with WebCrypto
// SHA-256: the leaf is the entry hash, each step hashes running||sibling
// (right) or sibling||running, and the result must be the segment's
// Merkle root. It returns a list of [ok, what] checks.
async function verifyProof(entry, segment, proof) {
  const checks = [];
  const check = (ok, what) => { checks.push([ok, what]); return ok; };
  if (!check(proof.entry_hash === entry.entry_hash, 'the proof is for this entry hash')) return checks;
  if (!check(proof.segment_id === segment.segment_id && proof.merkle_root === segment.merkle_root,
    `the proof is for segment ${segment.segment_id} and its Merkle root`)) return checks;
  const shape = pathShape(proof.leaf_index, proof.tree_size);
  if (!check(shape.length === proof.path.length && shape.every((r, i) => proof.path[i].right === r),
    `the path has the shape of leaf ${proof.leaf_index} of ${proof.tree_size}`)) return checks;
  let running = hexToBytes(entry.entry_hash);
  if (!check(running.length === 32, 'the entry hash is 32 bytes')) return checks;
  for (const step of proof.path) {
    const sib = hexToBytes(step.sibling_hash);
    if (!check(sib.length === 32, 'every sibling is 32 bytes')) return checks;
    const buf = new Uint8Array(64);
    buf.set(step.right ? running : sib, 0);
    buf.set(step.right ? sib : running, 32);
    running = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
  }
  const got = bytesToHex(running);
  check(got === segment.merkle_root, `the path recomputes the Merkle root (${got.slice(0, 16)}…)`);
  return checks;
}

// Seqnos are numbered per partition: the stream (when known) routes the
// request to its partition.
async function viewEntry(seqno, stream) {
  setView('Entry ' + seqno, el('p', {class: 'muted'}, 'Loading…'));
  const data = await get('entries/' + encodeURIComponent(seqno) + (stream ? '?stream=' + encodeURIComponent(stream) : ''));
  const e = data.entry, seg = data.segment, proof = data.proof;
  let witness = null;
  try {
    const s = (await get('streams')).streams.find(s => s.name === e.stream);
    witness = s ? {status: s.witness_status, w: s.witness} : null;
  } catch (_) { /* the entry still shows */ }
  const dl = (pairs) => el('dl', {class: 'fields'}, pairs.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  let payload;
  if (e.sealed && !e.opened) payload = el('p', {}, 'Sealed (ciphertext; the server opens it only for a writer token with --kek): ', el('code', {class: 'hash'}, payloadText(e.payload).slice(0, 200)));
  else if (e.payload && e.payload.encoding === 'text') {
    let t = e.payload.text;
    try { t = JSON.stringify(JSON.parse(t), null, 2); } catch (_) { /* plain text */ }
    payload = el('pre', {id: 'payload'}, t);
  } else payload = el('pre', {id: 'payload'}, payloadText(e.payload));
  const parts = [
    el('p', {}, el('a', {href: '#/events?stream=' + encodeURIComponent(e.stream)}, '← events of ' + e.stream)),
    dl([['Seqno', e.seqno], ['Stream', e.stream], ['Time', fmtTime(e.timestamp)], ['Event type', e.event_type],
      ['Severity', el('span', {class: 'sev-' + e.severity}, e.severity)], ['Producer', e.producer],
      ['Session', el('code', {}, e.session_id)], ['Boot', el('code', {}, e.boot_id)],
      ['Payload encoding', e.payload_encoding + (e.sealed ? (e.opened ? ' (sealed, opened)' : ' (sealed)') : '')],
      ['Entry hash', el('code', {class: 'hash', id: 'entry-hash'}, e.entry_hash)],
      ['Previous entry hash', el('code', {class: 'hash'}, e.prev_entry_hash)]]),
    el('h3', {}, 'Payload'), payload,
    el('h3', {}, 'Segment'),
  ];
  if (!seg) parts.push(el('p', {id: 'segment'}, 'Not sealed yet: the entry is in the open tail of its stream; its proof exists once the sealer closes the segment.'));
  else {
    parts.push(dl([['Segment', el('span', {id: 'segment'}, seg.segment_id)], ['Range', `${seg.seq_start} … ${seg.seq_end}`],
      ['Merkle root', el('code', {class: 'hash'}, seg.merkle_root)], ['Closed', fmtTime(seg.closed_at)],
      ['Signature', seg.signed ? el('span', {class: 'ok', id: 'signature'}, 'signed by ' + seg.signer_identity) : el('span', {class: 'warn', id: 'signature'}, 'not signed yet')],
      ['Witness', witness ? witnessText(witness, seg) : '—']]));
    const out = el('div', {id: 'proof-result', 'aria-live': 'polite'});
    const btn = el('button', {type: 'button', id: 'verify-proof', onclick: async () => {
      btn.disabled = true;
      try {
        const checks = await verifyProof(e, seg, proof);
        const ok = checks.every(c => c[0]);
        out.replaceChildren(el('p', {class: ok ? 'ok' : 'bad'}, ok ? 'Inclusion proof verified' : 'Inclusion proof does NOT verify'),
          el('ul', {}, checks.map(([good, what]) => el('li', {class: good ? null : 'bad'}, (good ? '✓ ' : '✗ ') + what))));
        announce(ok ? 'Inclusion proof verified' : 'Inclusion proof does not verify');
      } catch (err) { out.replaceChildren(errorBox(err)); } finally { btn.disabled = false; }
    }}, 'Verify inclusion proof in this page');
    parts.push(el('h3', {}, 'Inclusion proof'), proof ? el('p', {class: 'muted'},
      `Leaf ${proof.leaf_index} of ${proof.tree_size}, ${proof.path.length} steps. Checked here with WebCrypto SHA-256 against the segment's Merkle root.`) : '',
    proof ? btn : el('p', {}, 'No proof available.'), out);
  }
  setView('Entry ' + seqno, ...parts);
}

function witnessText(w, seg) {
  if (!w.w) return el('span', {class: 'muted'}, 'no cosignature yet');
  const covered = w.w.seq_end >= seg.seq_end;
  return el('span', {class: covered ? 'ok' : 'warn'},
    (covered ? 'cosigned (witness covers segment ' + w.w.segment_id + ')' : 'not cosigned yet (witness at segment ' + w.w.segment_id + ')') +
    ' · stream witness status: ' + w.status);
}

// ---- alerts and DLQ ----

async function viewAlerts() {
  setView('Alerts', el('p', {class: 'muted'}, 'Loading…'));
  const data = await get('alerts?limit=200');
  setView('Alerts', el('p', {class: 'muted'}, 'Alerts seen by this server since ' + fmtTime(data.since) + ', newest first.'),
    el('table', {}, el('thead', {}, el('tr', {}, ['Time', 'Stream', 'Kind', 'Segment', 'Message', 'Source'].map(h => el('th', {scope: 'col'}, h)))),
      el('tbody', {}, data.alerts.length ? data.alerts.map(a => el('tr', {},
        el('td', {class: 'mono'}, fmtTime(a.time)), el('td', {}, a.stream), el('td', {class: 'bad'}, a.kind),
        el('td', {class: 'num'}, a.segment_id || ''), el('td', {}, a.message), el('td', {}, a.source)))
        : el('tr', {}, el('td', {colspan: 6}, 'No alerts.')))));
}

async function viewDLQ(params) {
  setView('Dead letters', el('p', {class: 'muted'}, 'Loading…'));
  const q = new URLSearchParams({limit: '100'});
  if (params.get('before')) q.set('before', params.get('before'));
  const data = await get('dlq?' + q.toString());
  setView('Dead letters', el('p', {class: 'muted'}, 'Events the ingester could not commit (JetStream SECURELOG_DLQ), newest first.'),
    el('table', {}, el('thead', {}, el('tr', {}, ['Seq', 'Time', 'Stream', 'Message id', 'Reason', 'Data'].map(h => el('th', {scope: 'col'}, h)))),
      el('tbody', {}, data.entries.length ? data.entries.map(d => el('tr', {},
        el('td', {class: 'num'}, d.seq), el('td', {class: 'mono'}, fmtTime(d.time)), el('td', {}, d.stream),
        el('td', {class: 'mono'}, d.msg_id), el('td', {class: 'bad'}, d.reason), el('td', {class: 'mono'}, payloadText(d.data).slice(0, 200))))
        : el('tr', {}, el('td', {colspan: 6}, 'The dead-letter queue is empty.')))),
    el('div', {class: 'pager'}, data.next ? el('a', {href: '#/dlq?before=' + encodeURIComponent(data.next)}, 'Older →') : ''));
}

// ---- audit a bundle (WebAssembly verifier in a worker) ----

function viewAudit() {
  const bundleIn = el('input', {type: 'file', id: 'bundle-file', accept: '.json,application/json'});
  const trustIn = el('input', {type: 'file', id: 'trust-file', accept: '.json,application/json'});
  const witnessIn = el('input', {type: 'file', id: 'witness-file', accept: '.json,application/json'});
  const allow = el('input', {type: 'checkbox', id: 'allow-unsigned'});
  const bar = el('progress', {id: 'audit-progress', max: 1, value: 0, hidden: true, 'aria-label': 'Audit progress'});
  const phase = el('span', {class: 'muted', id: 'audit-phase'});
  const out = el('div', {id: 'audit-result', 'aria-live': 'polite'});
  const run = el('button', {type: 'button', id: 'audit-run', onclick: () => audit()}, 'Verify');
  const drop = el('div', {class: 'drop', id: 'drop'}, 'Drop a bundle (securelog export) and optionally a trust file (JSON list of public keys) here, or choose them below.');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    for (const f of e.dataTransfer.files) {
      // A trust file is a JSON array; a bundle is an object.
      const head = (await f.slice(0, 64).text()).trimStart();
      const dt = new DataTransfer();
      dt.items.add(f);
      if (head.startsWith('[')) trustIn.files = dt.files; else bundleIn.files = dt.files;
    }
    audit();
  });
  const worker = auditWorker();
  const ready = el('span', {class: 'muted', id: 'verifier-state'}, worker.state);
  worker.onstate = (st) => { ready.textContent = st; };
  function audit() {
    const bundle = bundleIn.files[0];
    if (!bundle) { out.replaceChildren(el('p', {class: 'error', role: 'alert'}, 'Choose a bundle file first.')); return; }
    if (worker.busy) return;
    worker.busy = true;
    run.disabled = true;
    bar.hidden = false; bar.removeAttribute('value');
    phase.textContent = 'starting…';
    out.replaceChildren();
    const t0 = performance.now();
    worker.onmessage = (d) => {
      if (d.type === 'phase') phase.textContent = d.text;
      else if (d.type === 'read') { bar.max = d.total || 1; bar.value = d.done; phase.textContent = `indexing the bundle: ${mb(d.done)} of ${mb(d.total)}`; }
      else if (d.type === 'progress') { bar.max = d.total || 1; bar.value = d.done; phase.textContent = `verifying: ${d.done} of ${d.total} entries`; }
      else if (d.type === 'result' || d.type === 'error') {
        worker.busy = false; run.disabled = false; bar.hidden = true;
        phase.textContent = `done in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
        if (d.type === 'error') { out.replaceChildren(el('div', {class: 'verdict fail', id: 'verdict', role: 'alert'}, el('p', {class: 'bad', id: 'verdict-head'}, 'Cannot verify'), el('p', {id: 'verdict-error'}, d.message))); announce('Cannot verify: ' + d.message); }
        else showVerdict(out, d.verdict, bundle.name);
      }
    };
    worker.w.postMessage({bundle, trust: trustIn.files[0] || null, witness: witnessIn.files[0] || null, allowUnsigned: allow.checked});
  }
  setView('Audit a bundle',
    el('p', {}, 'The bundle is verified in this browser by the securelog verifier compiled to WebAssembly: nothing is uploaded, and it works with the network off. It checks every entry hash and chain link, each segment\'s membership, Merkle root and checkpoint chain, every checkpoint signature and witness receipt, and names the first entry or segment that does not hold.'),
    drop,
    el('form', {class: 'filters', onsubmit: (e) => { e.preventDefault(); audit(); }},
      el('label', {for: 'bundle-file'}, 'Bundle (securelog export)', bundleIn),
      el('label', {for: 'trust-file'}, 'Trust file (optional; without it the bundle\'s own keys are used)', trustIn),
      el('label', {for: 'witness-file'}, 'Witness trust file (optional)', witnessIn),
      el('label', {for: 'allow-unsigned'}, 'Accept unsigned tail segments', allow), run),
    el('p', {}, 'Verifier: ', ready),
    el('div', {}, bar, ' ', phase), out);
}

// auditWorker returns the page's one verifier worker, started on first use:
// it fetches and compiles the module once, so later audits work offline.
let theWorker = null;
function auditWorker() {
  if (theWorker) return theWorker;
  const w = new Worker('audit-worker.js');
  const t = {w, busy: false, state: 'loading…', onmessage: () => {}, onstate: () => {}};
  const setState = (st) => { t.state = st; t.onstate(st); };
  w.onmessage = (m) => {
    if (m.data.type === 'ready') setState('ready (runs in this browser; works offline from now on)');
    else if (m.data.type === 'load-error') setState(m.data.message);
    else t.onmessage(m.data);
  };
  w.onerror = (e) => {
    e.preventDefault();
    theWorker = null;
    setState('the verifier worker failed: ' + (e.message || 'unknown error'));
    t.onmessage({type: 'error', message: 'the verifier worker failed: ' + (e.message || 'unknown error')});
  };
  theWorker = t;
  return t;
}

function mb(n) { return (n / 1048576).toFixed(1) + ' MB'; }

function showVerdict(out, v, name) {
  const r = v.report || {};
  const facts = [];
  if (v.report) {
    facts.push(`stream ${r.stream}: ${r.entries} entries, ${r.segments} segments, ${r.signed_segments} signatures verified`);
    facts.push(r.trust_source === 'trust-file' ? `trust: the trust file (${(r.trust_identities || []).join(', ')})`
      : `trust: the bundle's own keys (${(r.trust_identities || []).join(', ')}) — this proves only that the bundle is self-consistent; give a trust file to prove authenticity`);
    if (r.witness_receipts) facts.push(`${r.witness_receipts} witness receipts, ${r.cosignatures_verified} cosignatures verified`);
    if (r.open_entries) facts.push(`${r.open_entries} entries after the last segment (chain-checked, not yet in a segment)`);
  }
  let spot = '';
  if (v.failure) {
    const f = v.failure, s = [];
    if (f.seqno) s.push('seqno ' + f.seqno);
    if (f.entry_index !== undefined) s.push('entries[' + f.entry_index + ']');
    if (f.segment_id) s.push('segment ' + f.segment_id);
    if (f.segment_index !== undefined) s.push('segments[' + f.segment_index + ']');
    if (f.receipt_index !== undefined) s.push('witness_receipts[' + f.receipt_index + ']');
    spot = s.join(', ');
  }
  out.replaceChildren(el('div', {class: 'verdict ' + (v.ok ? 'pass' : 'fail'), id: 'verdict', role: v.ok ? null : 'alert'},
    el('p', {class: v.ok ? 'ok' : 'bad', id: 'verdict-head'}, v.ok ? `PASS: ${name} holds` : `FAIL: ${name} does not hold` + (spot ? ` at ${spot}` : '')),
    v.ok ? '' : el('p', {id: 'verdict-error'}, v.error),
    el('ul', {}, facts.map(f => el('li', {}, f))),
    el('details', {}, el('summary', {}, 'Verdict JSON'), el('pre', {}, JSON.stringify(v, null, 2)))));
  announce(v.ok ? 'Audit passed' : 'Audit failed' + (spot ? ' at ' + spot : ''));
}

// ---- router ----

async function route() {
  const [path, qs] = (location.hash.slice(1) || '/streams').split('?');
  const params = new URLSearchParams(qs || '');
  if (path === '/audit') { viewAudit(); return; } // needs no token: nothing leaves the browser
  if (path === '/login') { showLogin(); return; }
  try {
    if (path === '/streams') await viewStreams();
    else if (path === '/events') await viewEvents(params);
    else if (path.startsWith('/entry/')) await viewEntry(path.slice(7), params.get('stream'));
    else if (path === '/alerts') await viewAlerts();
    else if (path === '/dlq') await viewDLQ(params);
    else setView('Not found', el('p', {}, 'No such page: ' + path));
  } catch (err) {
    if (!(err instanceof APIError && (err.status === 401 || err.status === 403))) main.append(errorBox(err));
  }
}

window.addEventListener('hashchange', route);
renderSession();
route();
