/** @eaglet/cli: the oclif commands. The programmatic API lives in @eaglet/flows. */
export { EagletCommand } from './base-command.js';
export { terminalRenderer } from './render.js';
