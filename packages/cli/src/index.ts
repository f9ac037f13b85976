export { main } from './main.js';
export { runDump, renderConfig } from './dump.js';
