import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { proxyV1Header, proxyV2Header, type AddressInfoLike } from '../../src/proxy/proxy-protocol.ts';

function addr(address: string | undefined, port: number | undefined): AddressInfoLike {
  return { address, port };
}

/** Hex with spaces and line breaks ignored, so expected headers can be laid out field by field. */
function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

const SIGNATURE = '0d0a0d0a000d0a515549540a';

describe('proxyV1Header', () => {
  const cases: { name: string; src: AddressInfoLike; dst: AddressInfoLike; want: string }[] = [
    {
      name: 'writes TCP4 for IPv4 addresses',
      src: addr('192.0.2.10', 51234),
      dst: addr('198.51.100.1', 443),
      want: 'PROXY TCP4 192.0.2.10 198.51.100.1 51234 443\r\n',
    },
    {
      name: 'writes TCP6 for IPv6 addresses',
      src: addr('2001:db8::10', 65535),
      dst: addr('2001:db8:0:1::1', 8443),
      want: 'PROXY TCP6 2001:db8::10 2001:db8:0:1::1 65535 8443\r\n',
    },
    {
      name: 'writes IPv4-mapped IPv6 addresses as TCP4',
      src: addr('::ffff:192.0.2.10', 1),
      dst: addr('::FFFF:198.51.100.1', 0),
      want: 'PROXY TCP4 192.0.2.10 198.51.100.1 1 0\r\n',
    },
    {
      name: 'writes a mix of IPv4 and IPv6 as TCP6 with the IPv4 side mapped',
      src: addr('192.0.2.10', 4000),
      dst: addr('2001:db8::1', 443),
      want: 'PROXY TCP6 ::ffff:192.0.2.10 2001:db8::1 4000 443\r\n',
    },
    {
      name: 'drops the zone of a link-local address',
      src: addr('fe80::1%eth0', 4000),
      dst: addr('fe80::2%eth0', 443),
      want: 'PROXY TCP6 fe80::1 fe80::2 4000 443\r\n',
    },
    { name: 'writes UNKNOWN when the source address is unknown', src: addr(undefined, 1), dst: addr('192.0.2.1', 2), want: 'PROXY UNKNOWN\r\n' },
    { name: 'writes UNKNOWN when a port is unknown', src: addr('192.0.2.1', 1), dst: addr('192.0.2.1', undefined), want: 'PROXY UNKNOWN\r\n' },
    { name: 'writes UNKNOWN for something that is not an IP address', src: addr('/tmp/sock', 1), dst: addr('192.0.2.1', 2), want: 'PROXY UNKNOWN\r\n' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(proxyV1Header(c.src, c.dst), Buffer.from(c.want, 'latin1'));
    });
  }
});

describe('proxyV2Header', () => {
  const cases: { name: string; src: AddressInfoLike; dst: AddressInfoLike; want: Buffer }[] = [
    {
      name: 'writes PROXY over TCP/IPv4 with 12 address bytes',
      src: addr('192.0.2.10', 51234),
      dst: addr('198.51.100.1', 443),
      want: hex(`${SIGNATURE} 21 11 000c  c000020a c6336401  c822 01bb`),
    },
    {
      name: 'writes PROXY over TCP/IPv6 with 36 address bytes',
      src: addr('2001:db8::10', 65535),
      dst: addr('2001:db8:0:1::1', 8443),
      want: hex(`${SIGNATURE} 21 21 0024
        20010db8 00000000 00000000 00000010
        20010db8 00000001 00000000 00000001
        ffff 20fb`),
    },
    {
      name: 'writes IPv4-mapped IPv6 addresses as TCP/IPv4',
      src: addr('::ffff:192.0.2.10', 51234),
      dst: addr('::ffff:198.51.100.1', 443),
      want: hex(`${SIGNATURE} 21 11 000c  c000020a c6336401  c822 01bb`),
    },
    {
      name: 'writes a mix of IPv4 and IPv6 as TCP/IPv6 with the IPv4 side mapped',
      src: addr('192.0.2.10', 4000),
      dst: addr('::1', 443),
      want: hex(`${SIGNATURE} 21 21 0024
        00000000 00000000 0000ffff c000020a
        00000000 00000000 00000000 00000001
        0fa0 01bb`),
    },
    {
      name: 'expands an IPv6 address with an embedded dotted quad',
      src: addr('64:ff9b::192.0.2.33', 1),
      dst: addr('2001:db8:1:2:3:4:5:6', 2),
      want: hex(`${SIGNATURE} 21 21 0024
        0064ff9b 00000000 00000000 c0000221
        20010db8 00010002 00030004 00050006
        0001 0002`),
    },
    {
      name: 'writes LOCAL with AF_UNSPEC and no addresses when an address is unknown',
      src: addr(undefined, undefined),
      dst: addr('192.0.2.1', 443),
      want: hex(`${SIGNATURE} 20 00 0000`),
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(proxyV2Header(c.src, c.dst).toString('hex'), c.want.toString('hex'));
    });
  }
});
