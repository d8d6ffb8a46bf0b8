import { config } from '@opdbus/eslint-config';

export default config({ app: true });
