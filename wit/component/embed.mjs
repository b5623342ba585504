// Embeds the `verifier` world of verify.wit into the core module (jco's
// `embed` command cannot read a WIT path outside its working directory).
import { readFile, writeFile } from 'node:fs/promises';
import { componentEmbed } from '@bytecodealliance/jco-transpile/wasm-tools';

const [core, wit, out] = process.argv.slice(2);
const embedded = await componentEmbed({
  binary: await readFile(core),
  witSource: await readFile(wit, 'utf8'),
  world: 'verifier',
});
await writeFile(out, embedded);
