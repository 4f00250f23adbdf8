/**
 * One measured run in a fresh process, so peak RSS belongs to this run alone; prints one JSON line.
 *   readWorker.ts catalog <workspace> <spec>…   read → check → DuckDB catalog (the `curate init` path)
 *   readWorker.ts stream <spec>…                read → check only: the streaming readers on their own
 */
import { addDataset, Catalog } from '../src/curate/api.js';
import { checkImage } from '../src/embed/imageCheck.js';
import { openDataset } from '../src/embed/readers/index.js';

const [mode, ...args] = process.argv.slice(2);
const started = performance.now();
let samples = 0;
let issues = 0;
if (mode === 'catalog') {
  const [workspace, ...specs] = args;
  const catalog = await Catalog.open(workspace!);
  for (const spec of specs) {
    const report = await addDataset(catalog, spec);
    samples += report.samplesRead;
    issues += report.issues.reduce((sum, i) => sum + i.count, 0);
  }
  catalog.close();
} else {
  for (const spec of args) {
    const { reader } = await openDataset(spec);
    for (const part of await reader.parts()) {
      for await (const item of reader.read(part)) {
        if (item.type === 'issue' || !checkImage(await item.sample.image()).ok) issues += 1;
        else samples += 1;
      }
    }
  }
}
const seconds = (performance.now() - started) / 1000;
const peakRssMiB = process.resourceUsage().maxRSS / 1024;
console.log(
  JSON.stringify({
    samples,
    issues,
    seconds,
    peakRssMiB,
    heapUsedMiB: process.memoryUsage().heapUsed / 2 ** 20,
  }),
);
