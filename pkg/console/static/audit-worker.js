// Runs the securelog verifier (verifier.wasm, a WASI Preview 1 reactor
// built from cmd/securelog-verifier) on files the user chose, inside this
// dedicated worker. A small WASI shim gives the module a read-only
// directory "/" holding /bundle.json, /trust.json and /witnesses.json;
// reads go through FileReaderSync on slices of the File, so the bundle is
// never loaded whole and nothing leaves the browser.
'use strict';

const E = {SUCCESS: 0, ACCES: 2, BADF: 8, INVAL: 28, ISDIR: 31, NOENT: 44, NOSYS: 52, NOTDIR: 54, ROFS: 69, SPIPE: 70};
const FILETYPE = {CHAR: 2, DIR: 3, FILE: 4};
const ALL_RIGHTS = 0x1fffffffn;
const READ_CHUNK = 8 << 20; // largest single read handed to FileReaderSync

let modulePromise = null;
function loadModule() {
  if (!modulePromise) {
    modulePromise = fetch('verifier.wasm').then(r => {
      if (!r.ok) throw new Error('cannot load the verifier module (verifier.wasm): HTTP ' + r.status);
      return WebAssembly.compileStreaming(r);
    });
  }
  return modulePromise;
}

// ProcExit is thrown by proc_exit to unwind the module.
class ProcExit extends Error {
  constructor(code) { super('the verifier exited with code ' + code); this.code = code; }
}

// WASI implements the wasi_snapshot_preview1 functions the Go runtime and
// the verifier import, over a map of path → File.
class WASI {
  constructor(files, onStderrLine, onRead) {
    this.files = files;
    this.fds = new Map([[0, {kind: 'stdio'}], [1, {kind: 'stdio'}], [2, {kind: 'stdio'}], [3, {kind: 'dir', name: '/'}]]);
    this.nextFd = 4;
    this.memory = null;
    this.reader = new FileReaderSync();
    this.onStderrLine = onStderrLine;
    this.onRead = onRead;
    this.stderrBuf = '';
    this.stderrTail = [];
    this.dec = new TextDecoder();
    this.enc = new TextEncoder();
    const self = this;
    const wrap = (fn) => function (...args) {
      try { return fn.apply(self, args); } catch (e) {
        if (e instanceof ProcExit) throw e;
        if (e && e.name === 'NotReadableError') return E.ACCES;
        throw e;
      }
    };
    this.imports = {};
    for (const name of ['args_get', 'args_sizes_get', 'environ_get', 'environ_sizes_get', 'clock_time_get', 'random_get',
      'sched_yield', 'poll_oneoff', 'proc_exit', 'fd_write', 'fd_read', 'fd_pread', 'fd_close', 'fd_seek', 'fd_filestat_get',
      'fd_fdstat_get', 'fd_fdstat_set_flags', 'fd_prestat_get', 'fd_prestat_dir_name', 'path_open', 'path_filestat_get']) {
      this.imports[name] = wrap(this[name]);
    }
    // Anything else the module imports answers "not supported".
    this.imports = new Proxy(this.imports, {get: (t, k) => t[k] || (() => E.NOSYS)});
  }
  view() { return new DataView(this.memory.buffer); }
  bytes(ptr, len) { return new Uint8Array(this.memory.buffer, ptr, len); }
  str(ptr, len) { return this.dec.decode(this.bytes(ptr, len).slice()); }

  args_get() { return E.SUCCESS; }
  args_sizes_get(argc, bufSize) { const v = this.view(); v.setUint32(argc, 0, true); v.setUint32(bufSize, 0, true); return E.SUCCESS; }
  environ_get() { return E.SUCCESS; }
  environ_sizes_get(n, bufSize) { const v = this.view(); v.setUint32(n, 0, true); v.setUint32(bufSize, 0, true); return E.SUCCESS; }
  clock_time_get(id, _precision, out) {
    const ns = id === 0 ? BigInt(Date.now()) * 1000000n : BigInt(Math.round(performance.now() * 1e6));
    this.view().setBigUint64(out, ns, true);
    return E.SUCCESS;
  }
  random_get(ptr, len) {
    for (let off = 0; off < len; off += 65536) crypto.getRandomValues(this.bytes(ptr + off, Math.min(65536, len - off)));
    return E.SUCCESS;
  }
  sched_yield() { return E.SUCCESS; }
  // poll_oneoff: the verifier never waits on anything; every clock
  // subscription is reported as elapsed at once.
  poll_oneoff(inPtr, outPtr, nsubs, neventsPtr) {
    const v = this.view();
    let n = 0;
    for (let i = 0; i < nsubs; i++) {
      const sub = inPtr + i * 48, ev = outPtr + n * 32;
      v.setBigUint64(ev, v.getBigUint64(sub, true), true);
      const tag = v.getUint8(sub + 8);
      v.setUint16(ev + 8, tag === 0 ? E.SUCCESS : E.NOSYS, true);
      v.setUint8(ev + 10, tag);
      n++;
    }
    v.setUint32(neventsPtr, n, true);
    return E.SUCCESS;
  }
  proc_exit(code) { throw new ProcExit(code); }

  iovs(iovs, n) {
    const v = this.view(), out = [];
    for (let i = 0; i < n; i++) out.push([v.getUint32(iovs + i * 8, true), v.getUint32(iovs + i * 8 + 4, true)]);
    return out;
  }
  fd_write(fd, iovs, n, nwritten) {
    let total = 0, text = '';
    for (const [p, l] of this.iovs(iovs, n)) { text += this.dec.decode(this.bytes(p, l).slice(), {stream: true}); total += l; }
    if (fd === 1 || fd === 2) {
      this.stderrBuf += text;
      let i;
      while ((i = this.stderrBuf.indexOf('\n')) >= 0) {
        const line = this.stderrBuf.slice(0, i);
        this.stderrBuf = this.stderrBuf.slice(i + 1);
        if (!this.onStderrLine(line)) { this.stderrTail.push(line); if (this.stderrTail.length > 40) this.stderrTail.shift(); }
      }
    } else return E.BADF;
    this.view().setUint32(nwritten, total, true);
    return E.SUCCESS;
  }
  // readAt copies up to the iovecs' room from file f at offset pos.
  readAt(f, iovs, n, pos) {
    let done = 0;
    for (const [p, l] of this.iovs(iovs, n)) {
      let room = l, at = p;
      while (room > 0 && pos < f.file.size) {
        const want = Math.min(room, READ_CHUNK, f.file.size - pos);
        const buf = new Uint8Array(this.reader.readAsArrayBuffer(f.file.slice(pos, pos + want)));
        this.bytes(at, buf.length).set(buf);
        pos += buf.length; at += buf.length; room -= buf.length; done += buf.length;
        if (buf.length < want) break;
      }
    }
    if (f.isBundle) this.onRead(pos, f.file.size);
    return done;
  }
  fileFd(fd) { const f = this.fds.get(fd); return f && f.kind === 'file' ? f : null; }
  fd_read(fd, iovs, n, nread) {
    const f = this.fileFd(fd);
    if (!f) return fd === 0 ? (this.view().setUint32(nread, 0, true), E.SUCCESS) : E.BADF;
    const got = this.readAt(f, iovs, n, f.pos);
    f.pos += got;
    this.view().setUint32(nread, got, true);
    return E.SUCCESS;
  }
  fd_pread(fd, iovs, n, offset, nread) {
    const f = this.fileFd(fd);
    if (!f) return E.BADF;
    this.view().setUint32(nread, this.readAt(f, iovs, n, Number(offset)), true);
    return E.SUCCESS;
  }
  fd_seek(fd, offset, whence, out) {
    const f = this.fileFd(fd);
    if (!f) return E.SPIPE;
    const base = whence === 0 ? 0 : whence === 1 ? f.pos : f.file.size;
    const pos = base + Number(offset);
    if (pos < 0) return E.INVAL;
    f.pos = pos;
    this.view().setBigUint64(out, BigInt(pos), true);
    return E.SUCCESS;
  }
  fd_close(fd) { return this.fds.delete(fd) ? E.SUCCESS : E.BADF; }
  writeFilestat(ptr, type, size) {
    const v = this.view();
    this.bytes(ptr, 64).fill(0);
    v.setUint8(ptr + 16, type);
    v.setBigUint64(ptr + 24, 1n, true);
    v.setBigUint64(ptr + 32, BigInt(size), true);
  }
  fd_filestat_get(fd, ptr) {
    const f = this.fds.get(fd);
    if (!f) return E.BADF;
    if (f.kind === 'file') this.writeFilestat(ptr, FILETYPE.FILE, f.file.size);
    else this.writeFilestat(ptr, f.kind === 'dir' ? FILETYPE.DIR : FILETYPE.CHAR, 0);
    return E.SUCCESS;
  }
  fd_fdstat_get(fd, ptr) {
    const f = this.fds.get(fd);
    if (!f) return E.BADF;
    const v = this.view();
    this.bytes(ptr, 24).fill(0);
    v.setUint8(ptr, f.kind === 'file' ? FILETYPE.FILE : f.kind === 'dir' ? FILETYPE.DIR : FILETYPE.CHAR);
    v.setBigUint64(ptr + 8, ALL_RIGHTS, true);
    v.setBigUint64(ptr + 16, ALL_RIGHTS, true);
    return E.SUCCESS;
  }
  fd_fdstat_set_flags() { return E.SUCCESS; }
  fd_prestat_get(fd, ptr) {
    if (fd !== 3) return E.BADF;
    const v = this.view();
    v.setUint8(ptr, 0);
    v.setUint32(ptr + 4, 1, true);
    return E.SUCCESS;
  }
  fd_prestat_dir_name(fd, ptr, len) {
    if (fd !== 3) return E.BADF;
    if (len >= 1) this.bytes(ptr, 1)[0] = 0x2f; // "/"
    return E.SUCCESS;
  }
  lookup(dirfd, ptr, len) {
    const d = this.fds.get(dirfd);
    if (!d) return [E.BADF];
    if (d.kind !== 'dir') return [E.NOTDIR];
    const name = '/' + this.str(ptr, len).replace(/^\/+/, '');
    if (name === '/' || name === '/.') return [E.SUCCESS, null];
    const file = this.files[name];
    return file ? [E.SUCCESS, {file, isBundle: name === '/bundle.json'}] : [E.NOENT];
  }
  path_open(dirfd, _dirflags, ptr, len, oflags, _rb, _ri, _fdflags, fdOut) {
    if (oflags & (1 | 4 | 8)) return E.ROFS; // creat, excl, trunc: the directory is read-only
    const [err, f] = this.lookup(dirfd, ptr, len);
    if (err) return err;
    const fd = this.nextFd++;
    this.fds.set(fd, f ? {kind: 'file', file: f.file, isBundle: f.isBundle, pos: 0} : {kind: 'dir', name: '/'});
    this.view().setUint32(fdOut, fd, true);
    return E.SUCCESS;
  }
  path_filestat_get(dirfd, _flags, ptr, len, out) {
    const [err, f] = this.lookup(dirfd, ptr, len);
    if (err) return err;
    if (f) this.writeFilestat(out, FILETYPE.FILE, f.file.size); else this.writeFilestat(out, FILETYPE.DIR, 0);
    return E.SUCCESS;
  }
}

// Compile the module as soon as the worker starts: from then on audits
// need no network at all.
loadModule().then(() => postMessage({type: 'ready'}),
  (e) => postMessage({type: 'load-error', message: 'cannot load the verifier: ' + (e && e.message ? e.message : e)}));

const verifyExport = 'securelog:log/verify@1.0.0#verify';

onmessage = async (ev) => {
  const {bundle, trust, witness, allowUnsigned} = ev.data;
  let wasi = null;
  try {
    postMessage({type: 'phase', text: 'loading the verifier…'});
    const mod = await loadModule();
    const files = {'/bundle.json': bundle};
    if (trust) files['/trust.json'] = trust;
    if (witness) files['/witnesses.json'] = witness;
    let lastRead = 0;
    wasi = new WASI(files, (line) => {
      const m = /^securelog-progress (\d+) (\d+)$/.exec(line);
      if (!m) return false;
      postMessage({type: 'progress', done: Number(m[1]), total: Number(m[2])});
      return true;
    }, (pos, size) => {
      const now = performance.now();
      if (now - lastRead > 100 || pos >= size) { lastRead = now; postMessage({type: 'read', done: Math.min(pos, size), total: size}); }
    });
    const inst = await WebAssembly.instantiate(mod, {wasi_snapshot_preview1: wasi.imports});
    wasi.memory = inst.exports.memory;
    inst.exports._initialize();
    const enc = new TextEncoder();
    const arg = (s) => {
      if (!s) return [0, 0];
      const b = enc.encode(s);
      const p = inst.exports.cabi_realloc(0, 0, 1, b.length);
      new Uint8Array(wasi.memory.buffer, p, b.length).set(b);
      return [p, b.length];
    };
    postMessage({type: 'phase', text: 'indexing the bundle…'});
    const ret = inst.exports[verifyExport](...arg('/bundle.json'), ...arg(trust ? '/trust.json' : ''),
      ...arg(witness ? '/witnesses.json' : ''), allowUnsigned ? 1 : 0);
    const v = new DataView(wasi.memory.buffer);
    const ptr = v.getUint32(ret, true), len = v.getUint32(ret + 4, true);
    const verdict = JSON.parse(new TextDecoder().decode(new Uint8Array(wasi.memory.buffer, ptr, len).slice()));
    inst.exports['cabi_post_' + verifyExport](ret);
    postMessage({type: 'result', verdict});
  } catch (e) {
    const tail = wasi ? wasi.stderrTail.concat(wasi.stderrBuf ? [wasi.stderrBuf] : []).join('\n') : '';
    let msg = e && e.message ? e.message : String(e);
    if (/out of memory/.test(tail) || e instanceof RangeError) msg = 'the verifier ran out of memory (a segment of this bundle is too large to verify in the browser; use `securelog audit`)';
    else if (tail) msg += ': ' + tail.split('\n').filter(Boolean).slice(0, 3).join(' / ');
    postMessage({type: 'error', message: msg});
  }
};
