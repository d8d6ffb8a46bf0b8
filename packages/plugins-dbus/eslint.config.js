export { default } from '@opdbus/eslint-config';
