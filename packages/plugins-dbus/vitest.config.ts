import { project } from '@opdbus/vitest-config';

export default project('plugins-dbus');
