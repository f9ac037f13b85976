export { main } from './main.js';
export { runDump, renderConfig } from './dump.js';
export { readAdmin, parseAdminUrl, type AdminDump } from './dump-admin.js';
