import { OpdbusError } from '@opdbus/core';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { parseSignature, parseSingleType } from './signature.js';

/** An `<annotation name=… value=…/>`. */
export interface Annotation {
  name: string;
  value: string;
}

/** A method or signal argument. */
export interface ArgInfo {
  /** The argument's name, when the XML gives one. */
  name: string | undefined;
  /** Its signature (one complete type). */
  type: string;
  /** `in` or `out` (signal arguments are `out`). */
  direction: 'in' | 'out';
  annotations: Annotation[];
}

/** A method. */
export interface MethodInfo {
  name: string;
  /** Input arguments, in order. */
  inArgs: ArgInfo[];
  /** Output arguments, in order. */
  outArgs: ArgInfo[];
  annotations: Annotation[];
  /** `org.freedesktop.DBus.Deprecated` is true. */
  deprecated: boolean;
  /** `org.freedesktop.DBus.Method.NoReply` is true: callers need not wait for a reply. */
  noReply: boolean;
}

/** A signal. */
export interface SignalInfo {
  name: string;
  args: ArgInfo[];
  annotations: Annotation[];
  deprecated: boolean;
}

/** How a property announces changes (`org.freedesktop.DBus.Property.EmitsChangedSignal`). */
export type EmitsChangedSignal = 'true' | 'invalidates' | 'const' | 'false';

/** A property. */
export interface PropertyInfo {
  name: string;
  /** Its signature (one complete type). */
  type: string;
  access: 'read' | 'write' | 'readwrite';
  annotations: Annotation[];
  deprecated: boolean;
  /** From the property's annotation, else the interface's, else `true` (the specification's default). */
  emitsChangedSignal: EmitsChangedSignal;
}

/** An interface. */
export interface InterfaceInfo {
  name: string;
  methods: MethodInfo[];
  signals: SignalInfo[];
  properties: PropertyInfo[];
  annotations: Annotation[];
  deprecated: boolean;
}

/** An object (a `<node>`), with its interfaces and child nodes. */
export interface NodeInfo {
  /** The node's name attribute: absolute on the root when given, relative on children. */
  name: string | undefined;
  interfaces: InterfaceInfo[];
  /** Child nodes (usually names only; some services inline their interfaces). */
  nodes: NodeInfo[];
}

/** The interfaces of the D-Bus specification that every object may have; bindings skip them by default. */
export const STANDARD_INTERFACES: ReadonlySet<string> = new Set([
  'org.freedesktop.DBus.Peer',
  'org.freedesktop.DBus.Introspectable',
  'org.freedesktop.DBus.Properties',
  'org.freedesktop.DBus.ObjectManager',
]);

const interfaceNamePattern = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$/;
const memberNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  isArray: (name) =>
    ['node', 'interface', 'method', 'signal', 'property', 'arg', 'annotation'].includes(name),
  ignoreDeclaration: true,
  ignorePiTags: true,
  parseAttributeValue: false,
  trimValues: true,
});

type Raw = Record<string, unknown>;

function asObjects(value: unknown): Raw[] {
  if (!Array.isArray(value)) return [];
  return value.map((v) => (typeof v === 'object' && v !== null ? (v as Raw) : {}));
}

function attr(raw: Raw, key: string): string | undefined {
  const value = raw[key];
  return typeof value === 'string' ? value : undefined;
}

/**
 * Parse D-Bus introspection XML (as returned by org.freedesktop.DBus.Introspectable.Introspect)
 * into {@link NodeInfo}: interfaces, methods, signals, properties, annotations (deprecation,
 * EmitsChangedSignal, NoReply) and child nodes. Names and signatures are validated. Throws
 * `OPDBUS_ERR_DBUS_INTROSPECTION` naming `source`, the element and the problem.
 */
export function parseIntrospection(xml: string, source = 'introspection XML'): NodeInfo {
  const fail = (what: string, data: Record<string, unknown> = {}): never => {
    throw new OpdbusError('OPDBUS_ERR_DBUS_INTROSPECTION', `${source}: ${what}.`, {
      data: { source, ...data },
    });
  };
  const valid = XMLValidator.validate(xml);
  if (valid !== true)
    fail(`not well-formed XML at line ${valid.err.line}, column ${valid.err.col}: ${valid.err.msg}`, {
      line: valid.err.line,
      col: valid.err.col,
    });
  let doc: Raw;
  try {
    doc = parser.parse(xml) as Raw;
  } catch (err) {
    return fail(`cannot parse: ${(err as Error).message}`);
  }
  const roots = asObjects(doc.node);
  if (roots.length !== 1 || roots[0] === undefined)
    return fail('the document must have exactly one root <node> element');

  const annotations = (raw: Raw, where: string): Annotation[] =>
    asObjects(raw.annotation).map((a) => {
      const name = attr(a, 'name');
      const value = attr(a, 'value');
      if (name === undefined || value === undefined) fail(`${where}: <annotation> needs "name" and "value"`);
      return { name: name!, value: value! };
    });
  const flag = (list: Annotation[], name: string): boolean =>
    list.some((a) => a.name === name && a.value === 'true');
  const signature = (type: string | undefined, where: string, single: boolean): string => {
    if (type === undefined) return fail(`${where}: missing "type"`);
    try {
      if (single) parseSingleType(type);
      else parseSignature(type);
    } catch (err) {
      fail(`${where}: ${(err as Error).message}`);
    }
    return type;
  };
  const args = (raw: Raw, where: string, defaultDirection: 'in' | 'out'): ArgInfo[] =>
    asObjects(raw.arg).map((a, i) => {
      const direction = attr(a, 'direction') ?? defaultDirection;
      if (direction !== 'in' && direction !== 'out')
        fail(`${where} argument ${i}: direction must be "in" or "out", not "${direction}"`);
      return {
        name: attr(a, 'name'),
        type: signature(attr(a, 'type'), `${where} argument ${attr(a, 'name') ?? i}`, true),
        direction: direction as 'in' | 'out',
        annotations: annotations(a, `${where} argument ${i}`),
      };
    });
  const memberName = (raw: Raw, kind: string, iface: string): string => {
    const name = attr(raw, 'name');
    if (name === undefined || !memberNamePattern.test(name))
      fail(`interface ${iface}: <${kind}> has an invalid name ${JSON.stringify(name)}`);
    return name!;
  };

  const parseInterface = (raw: Raw): InterfaceInfo => {
    const name = attr(raw, 'name');
    if (name === undefined || !interfaceNamePattern.test(name))
      fail(`<interface> has an invalid name ${JSON.stringify(name)}`);
    const iface = name!;
    const ifaceAnnotations = annotations(raw, `interface ${iface}`);
    const ifaceEmits = ifaceAnnotations.find(
      (a) => a.name === 'org.freedesktop.DBus.Property.EmitsChangedSignal',
    )?.value;
    const methods = asObjects(raw.method).map((m): MethodInfo => {
      const mName = memberName(m, 'method', iface);
      const all = args(m, `${iface}.${mName}`, 'in');
      const list = annotations(m, `${iface}.${mName}`);
      return {
        name: mName,
        inArgs: all.filter((a) => a.direction === 'in'),
        outArgs: all.filter((a) => a.direction === 'out'),
        annotations: list,
        deprecated: flag(list, 'org.freedesktop.DBus.Deprecated'),
        noReply: flag(list, 'org.freedesktop.DBus.Method.NoReply'),
      };
    });
    const signals = asObjects(raw.signal).map((s): SignalInfo => {
      const sName = memberName(s, 'signal', iface);
      const list = annotations(s, `${iface}.${sName}`);
      return {
        name: sName,
        args: args(s, `${iface}.${sName}`, 'out'),
        annotations: list,
        deprecated: flag(list, 'org.freedesktop.DBus.Deprecated'),
      };
    });
    const properties = asObjects(raw.property).map((p): PropertyInfo => {
      const pName = memberName(p, 'property', iface);
      const access = attr(p, 'access');
      if (access !== 'read' && access !== 'write' && access !== 'readwrite')
        fail(
          `property ${iface}.${pName}: access must be read, write or readwrite, not ${JSON.stringify(access)}`,
        );
      const list = annotations(p, `${iface}.${pName}`);
      const emits =
        list.find((a) => a.name === 'org.freedesktop.DBus.Property.EmitsChangedSignal')?.value ??
        ifaceEmits ??
        'true';
      if (!['true', 'invalidates', 'const', 'false'].includes(emits))
        fail(
          `property ${iface}.${pName}: EmitsChangedSignal must be true, invalidates, const or false, not "${emits}"`,
        );
      return {
        name: pName,
        type: signature(attr(p, 'type'), `property ${iface}.${pName}`, true),
        access: access as PropertyInfo['access'],
        annotations: list,
        deprecated: flag(list, 'org.freedesktop.DBus.Deprecated'),
        emitsChangedSignal: emits as EmitsChangedSignal,
      };
    });
    return {
      name: iface,
      methods,
      signals,
      properties,
      annotations: ifaceAnnotations,
      deprecated: flag(ifaceAnnotations, 'org.freedesktop.DBus.Deprecated'),
    };
  };
  const parseNode = (raw: Raw): NodeInfo => ({
    name: attr(raw, 'name'),
    interfaces: asObjects(raw.interface).map(parseInterface),
    nodes: asObjects(raw.node).map(parseNode),
  });
  return parseNode(roots[0]);
}

/** The absolute paths of a node's children, given the node's own path. */
export function childPaths(path: string, node: NodeInfo): string[] {
  return node.nodes
    .map((child) => child.name)
    .filter((name): name is string => name !== undefined && name !== '')
    .map((name) => (name.startsWith('/') ? name : path === '/' ? `/${name}` : `${path}/${name}`));
}
