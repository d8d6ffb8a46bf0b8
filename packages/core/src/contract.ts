/**
 * The version of the plugin contract (the `Plugin` interface and what the engine promises around it) that
 * this @opdbus/core implements. A plugin package declares the contract it was built for in its
 * package.json (`"opdbus": { "contract": 1, ... }`); op-dbus refuses to load a package built for
 * another one (`OPDBUS_ERR_PLUGIN_CONTRACT`) instead of failing later in the middle of a plan.
 *
 * It changes only when a plugin written for the previous contract would no longer work: a new
 * required method, a changed meaning of one. New optional members do not change it.
 */
export const PLUGIN_CONTRACT_VERSION = 1;
