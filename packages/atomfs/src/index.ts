export { main, HELP } from './cli.js';
