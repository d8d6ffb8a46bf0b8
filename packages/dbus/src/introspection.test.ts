import { readFileSync } from 'node:fs';
import { isOpdbusError } from '@opdbus/core';
import { describe, expect, it } from 'vitest';
import { childPaths, parseIntrospection } from './introspection.js';

const xml = `<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node name="/com/example/Thing">
  <interface name="com.example.Thing">
    <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="invalidates"/>
    <method name="Frob">
      <arg name="how" type="s" direction="in"/>
      <arg name="count" type="u"/>
      <arg name="result" type="a{sv}" direction="out"/>
      <annotation name="org.freedesktop.DBus.Deprecated" value="true"/>
    </method>
    <method name="Poke"><annotation name="org.freedesktop.DBus.Method.NoReply" value="true"/></method>
    <signal name="Changed"><arg name="what" type="as"/></signal>
    <property name="Size" type="t" access="read"/>
    <property name="Label" type="s" access="readwrite">
      <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="false"/>
    </property>
  </interface>
  <node name="child1"/>
  <node name="child2"><interface name="com.example.Inline"/></node>
</node>`;

describe('parseIntrospection', () => {
  it('reads interfaces, members, annotations and child nodes', () => {
    const node = parseIntrospection(xml);
    expect(node.name).toBe('/com/example/Thing');
    const iface = node.interfaces[0]!;
    expect(iface.name).toBe('com.example.Thing');
    const frob = iface.methods[0]!;
    expect(frob.inArgs.map((a) => [a.name, a.type])).toEqual([
      ['how', 's'],
      ['count', 'u'],
    ]);
    expect(frob.outArgs[0]!.type).toBe('a{sv}');
    expect(frob.deprecated).toBe(true);
    expect(iface.methods[1]!.noReply).toBe(true);
    expect(iface.signals[0]!.args[0]!.direction).toBe('out');
    expect(iface.properties.map((p) => [p.name, p.access, p.emitsChangedSignal])).toEqual([
      ['Size', 'read', 'invalidates'],
      ['Label', 'readwrite', 'false'],
    ]);
    expect(childPaths('/com/example/Thing', node)).toEqual([
      '/com/example/Thing/child1',
      '/com/example/Thing/child2',
    ]);
    expect(node.nodes[1]!.interfaces[0]!.name).toBe('com.example.Inline');
  });

  it('parses the real systemd, hostnamed, timedated and logind interfaces', () => {
    for (const file of [
      'systemd1-manager',
      'systemd1-service',
      'systemd1-timer',
      'hostname1',
      'timedate1',
      'login1-manager',
      'login1-session',
      'login1-user',
      'login1-seat',
    ]) {
      const node = parseIntrospection(
        readFileSync(new URL(`../interfaces/${file}.xml`, import.meta.url), 'utf8'),
        file,
      );
      expect(node.interfaces.length, file).toBeGreaterThan(3);
    }
    const manager = parseIntrospection(
      readFileSync(new URL('../interfaces/systemd1-manager.xml', import.meta.url), 'utf8'),
    );
    const m = manager.interfaces.find((i) => i.name === 'org.freedesktop.systemd1.Manager')!;
    expect(m.methods.find((x) => x.name === 'StartUnit')!.inArgs.map((a) => a.type)).toEqual(['s', 's']);
    expect(m.properties.find((p) => p.name === 'LogLevel')!.emitsChangedSignal).toBe('false');
  });

  it('reports malformed XML and invalid members with where', () => {
    const bad = (text: string): string => {
      try {
        parseIntrospection(text, 'test.xml');
      } catch (err) {
        expect(isOpdbusError(err, 'OPDBUS_ERR_DBUS_INTROSPECTION')).toBe(true);
        return (err as Error).message;
      }
      throw new Error('no error');
    };
    expect(bad('<node><interface name="a.b"><method></interface></node>')).toMatch(
      /test\.xml: not well-formed XML at line 1/,
    );
    expect(bad('<node><interface name="nodots"/></node>')).toMatch(/invalid name "nodots"/);
    expect(
      bad('<node><interface name="a.b"><property name="P" type="a" access="read"/></interface></node>'),
    ).toMatch(/property a\.b\.P: Invalid D-Bus signature/);
    expect(
      bad('<node><interface name="a.b"><property name="P" type="s" access="rw"/></interface></node>'),
    ).toMatch(/access must be/);
  });
});
