// What the bindings shipped in src/bindings import (the same names a generated module imports
// from '@opdbus/dbus').
export { lazySchema } from '@opdbus/core';
export { type DbusConnection, type Subscription } from './connection.js';
export { InterfaceProxy, type ProxyTarget } from './proxy.js';
export { Variant } from './variant.js';
