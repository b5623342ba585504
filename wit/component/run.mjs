// Calls the transpiled component's verify and prints the verdict JSON.
import { verify } from './out/verifier.js';

const [bundle, trust] = process.argv.slice(2);
const verdict = JSON.parse(verify.verify(bundle, trust || '', '', false));
console.log(JSON.stringify(verdict, null, 2));
process.exit(verdict.ok ? 0 : 1);
