#!/usr/bin/env node
// Runs the built gateway (npm run build first).
import '../dist/src/main.js';
