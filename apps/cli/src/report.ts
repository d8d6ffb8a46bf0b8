export { reportError } from '@opdbus/runtime';
