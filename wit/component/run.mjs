// Calls the transpiled component's verify on a bundle (and optional trust
// file) and prints the verdict JSON; exit 0 only if the bundle holds. The
// files' directories are preopened as /bundle and /trust before the
// component is instantiated (the Go runtime reads the preopens when it
// starts).
import { _setPreopens } from '@bytecodealliance/preview2-shim/filesystem';
import { basename, dirname, resolve } from 'node:path';

const [bundle, trust] = process.argv.slice(2);
const pre = { '/bundle': dirname(resolve(bundle)) };
if (trust) pre['/trust'] = dirname(resolve(trust));
_setPreopens(pre);
const { verify } = await import('./out/verifier.js');
const raw = verify.verify('/bundle/' + basename(bundle), trust ? '/trust/' + basename(trust) : '', '', false);
const verdict = JSON.parse(raw);
process.stdout.write(raw + '\n');
process.exit(verdict.ok ? 0 : 1);
