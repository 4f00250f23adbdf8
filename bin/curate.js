#!/usr/bin/env node
import { main } from '../dist/src/curate/cli/main.js';

process.exitCode = await main(process.argv);
