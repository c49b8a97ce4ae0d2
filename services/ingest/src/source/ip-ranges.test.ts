import { describe, expect, it } from 'vitest';
import {
  BLOCKED_RANGES,
  cidrContains,
  embeddedIPv4,
  findBlockedRange,
  isBlockedHostname,
  parseCidr,
  parseIp,
} from './ip-ranges.js';

/** The description of the range blocking `address`, or undefined when it may be reached. */
function blockedAs(address: string): string | undefined {
  const ip = parseIp(address);
  if (!ip) throw new Error(`test address ${address} does not parse`);
  return findBlockedRange(ip)?.range.description;
}

describe('BLOCKED_RANGES', () => {
  // One row per range: addresses at its edges inside, and the neighbours just outside it.
  const cases: { cidr: string; inside: string[]; outside: string[]; description: string }[] = [
    {
      cidr: '0.0.0.0/8',
      inside: ['0.0.0.0', '0.255.255.255'],
      outside: ['1.0.0.0'],
      description: 'a "this network" address (0.0.0.0/8, reaches the local host)',
    },
    {
      cidr: '10.0.0.0/8',
      inside: ['10.0.0.0', '10.0.0.5', '10.255.255.255'],
      outside: ['9.255.255.255', '11.0.0.0'],
      description: 'a private (RFC 1918) address',
    },
    {
      cidr: '100.64.0.0/10',
      inside: ['100.64.0.0', '100.100.100.200', '100.127.255.255'],
      outside: ['100.63.255.255', '100.128.0.0'],
      description: 'a carrier-grade NAT (RFC 6598) address',
    },
    {
      cidr: '127.0.0.0/8',
      inside: ['127.0.0.1', '127.255.255.254'],
      outside: ['126.255.255.255', '128.0.0.0'],
      description: 'a loopback address',
    },
    {
      cidr: '169.254.0.0/16',
      inside: ['169.254.0.1', '169.254.169.254'],
      outside: ['169.253.255.255', '169.255.0.0'],
      description: 'a link-local/metadata address',
    },
    {
      cidr: '172.16.0.0/12',
      inside: ['172.16.0.0', '172.31.255.255'],
      outside: ['172.15.255.255', '172.32.0.0'],
      description: 'a private (RFC 1918) address',
    },
    {
      cidr: '192.0.0.0/24',
      inside: ['192.0.0.0', '192.0.0.8', '192.0.0.255'],
      outside: ['191.255.255.255', '192.0.1.0'],
      description: 'an IETF protocol assignment (192.0.0.0/24) address',
    },
    {
      cidr: '192.0.2.0/24',
      inside: ['192.0.2.1', '192.0.2.255'],
      outside: ['192.0.3.0'],
      description: 'a documentation (TEST-NET-1) address',
    },
    {
      cidr: '192.168.0.0/16',
      inside: ['192.168.0.0', '192.168.1.10', '192.168.255.255'],
      outside: ['192.167.255.255', '192.169.0.0'],
      description: 'a private (RFC 1918) address',
    },
    {
      cidr: '198.18.0.0/15',
      inside: ['198.18.0.0', '198.19.255.255'],
      outside: ['198.17.255.255', '198.20.0.0'],
      description: 'a benchmarking (RFC 2544) address',
    },
    {
      cidr: '198.51.100.0/24',
      inside: ['198.51.100.7'],
      outside: ['198.51.99.255', '198.51.101.0'],
      description: 'a documentation (TEST-NET-2) address',
    },
    {
      cidr: '203.0.113.0/24',
      inside: ['203.0.113.9'],
      outside: ['203.0.112.255', '203.0.114.0'],
      description: 'a documentation (TEST-NET-3) address',
    },
    {
      cidr: '224.0.0.0/4',
      inside: ['224.0.0.1', '239.255.255.255'],
      outside: ['223.255.255.255'],
      description: 'a multicast address',
    },
    {
      cidr: '240.0.0.0/4',
      inside: ['240.0.0.1', '255.255.255.254'],
      outside: [],
      description: 'a reserved (240.0.0.0/4) address',
    },
    {
      cidr: '255.255.255.255/32',
      inside: ['255.255.255.255'],
      outside: [],
      description: 'the broadcast address',
    },
    {
      cidr: '::/128',
      inside: ['::', '0:0:0:0:0:0:0:0'],
      outside: [],
      description: 'the unspecified address (reaches the local host)',
    },
    { cidr: '::1/128', inside: ['::1'], outside: [], description: 'a loopback address' },
    {
      cidr: '::/96',
      inside: ['::2', '::7f00:1', '::127.0.0.1'],
      outside: ['::1:0:0:0'],
      description: 'a deprecated IPv4-compatible IPv6 address',
    },
    {
      cidr: '64:ff9b:1::/48',
      inside: ['64:ff9b:1::1', '64:ff9b:1:ffff::1'],
      outside: ['64:ff9b:2::1'],
      description: 'a local-use NAT64 (RFC 8215) address',
    },
    {
      cidr: '100::/64',
      inside: ['100::1', '100::ffff:ffff:ffff:ffff'],
      outside: ['100:0:0:1::1'],
      description: 'a discard-only (RFC 6666) address',
    },
    {
      cidr: '2001:db8::/32',
      inside: ['2001:db8::1', '2001:db8:ffff::1'],
      outside: ['2001:db7:ffff::1', '2001:db9::1'],
      description: 'a documentation (2001:db8::/32) address',
    },
    {
      cidr: 'fc00::/7',
      inside: ['fc00::1', 'fd00:ec2::254', 'fdff:ffff::1'],
      outside: ['fbff:ffff::1', 'fe00::1'],
      description: 'a unique-local (private IPv6) address',
    },
    {
      cidr: 'fe80::/10',
      inside: ['fe80::1', 'fe80::1%eth0', 'febf:ffff::1'],
      outside: ['fe7f:ffff::1'],
      description: 'a link-local address',
    },
    {
      cidr: 'fec0::/10',
      inside: ['fec0::1', 'feff:ffff::1'],
      outside: [],
      description: 'a deprecated site-local address',
    },
    {
      cidr: 'ff00::/8',
      inside: ['ff02::1', 'ff0e::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
      outside: ['feff:ffff::1'],
      description: 'a multicast address',
    },
  ];

  it('has a test row for every range that is blocked outright', () => {
    const outright = BLOCKED_RANGES.filter((range) => range.embeddedIPv4At === undefined).map((r) => r.cidr);
    expect(cases.map((c) => c.cidr).sort()).toEqual([...outright].sort());
  });

  for (const { cidr, inside, outside, description } of cases) {
    it(`${cidr}: blocks ${inside.join(', ')}${outside.length ? `; not ${outside.join(', ')}` : ''}`, () => {
      for (const address of inside) expect(blockedAs(address), address).toBe(description);
      // A neighbour may fall in another blocked range; it must not be described as this one.
      for (const address of outside) expect(blockedAs(address), address).not.toBe(description);
    });
  }

  it('lets public addresses through', () => {
    for (const address of ['8.8.8.8', '1.1.1.1', '93.184.216.34', '2606:4700:4700::1111', '2a00:1450::1']) {
      expect(blockedAs(address), address).toBeUndefined();
    }
  });

  it('::ffff:0:0/96 (IPv4-mapped) is judged by the embedded IPv4 address', () => {
    const loopback = findBlockedRange(parseIp('::ffff:127.0.0.1')!);
    expect(loopback?.range.description).toBe('a loopback address');
    expect(loopback?.embeddedIPv4).toBe('127.0.0.1');
    expect(loopback?.via?.cidr).toBe('::ffff:0:0/96');
    // The same address in hex groups, as WHATWG URL serializes it.
    expect(blockedAs('::ffff:7f00:1')).toBe('a loopback address');
    expect(blockedAs('::ffff:a9fe:a9fe')).toBe('a link-local/metadata address');
    expect(blockedAs('::ffff:10.1.2.3')).toBe('a private (RFC 1918) address');
    expect(blockedAs('::ffff:8.8.8.8')).toBeUndefined();
  });

  it('64:ff9b::/96 (NAT64) is judged by the embedded IPv4 address', () => {
    const blocked = findBlockedRange(parseIp('64:ff9b::10.0.0.1')!);
    expect(blocked?.range.description).toBe('a private (RFC 1918) address');
    expect(blocked?.embeddedIPv4).toBe('10.0.0.1');
    expect(blocked?.via?.cidr).toBe('64:ff9b::/96');
    expect(blockedAs('64:ff9b::a9fe:a9fe')).toBe('a link-local/metadata address');
    expect(blockedAs('64:ff9b::8.8.8.8')).toBeUndefined();
  });

  it('2002::/16 (6to4) is judged by the embedded IPv4 address', () => {
    expect(blockedAs('2002:c0a8:10a::1')).toBe('a private (RFC 1918) address');
    expect(blockedAs('2002:7f00:1::')).toBe('a loopback address');
    expect(blockedAs('2002:808:808::1')).toBeUndefined();
  });
});

describe('parseIp', () => {
  it('parses canonical IPv4 and IPv6 into bytes', () => {
    expect(parseIp('192.168.1.10')).toEqual({ family: 4, bytes: Uint8Array.from([192, 168, 1, 10]) });
    expect(parseIp('::ffff:127.0.0.1')).toEqual({
      family: 6,
      bytes: Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]),
    });
    expect(parseIp('2001:db8::8:1')?.bytes).toEqual(
      Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 1]),
    );
    expect(parseIp('1:2:3:4:5:6:7:8')?.bytes[15]).toBe(8);
    expect(parseIp('fe80::1%eth0')?.family).toBe(6);
  });

  it('refuses non-canonical numeric forms, brackets and names', () => {
    for (const text of [
      '0x7f.1',
      '127.1',
      '2130706433',
      '0127.0.0.1',
      '1.2.3.04',
      '0x7f000001',
      '[::1]',
      '',
      'localhost',
    ]) {
      expect(parseIp(text), text).toBeUndefined();
    }
  });
});

describe('parseCidr and cidrContains', () => {
  it('parses IPv4 and IPv6 CIDRs, masking host bits, and bare addresses as /32 or /128', () => {
    const cidr = parseCidr('10.1.2.3/8');
    expect(cidr.prefix).toBe(8);
    expect(Array.from(cidr.bytes)).toEqual([10, 0, 0, 0]);
    expect(parseCidr('::1').prefix).toBe(128);
    expect(parseCidr('203.0.113.5').prefix).toBe(32);
    expect(parseCidr('0.0.0.0/0').prefix).toBe(0);
  });

  it('matches by prefix and by family only', () => {
    const cidr = parseCidr('127.0.0.0/8');
    expect(cidrContains(cidr, parseIp('127.8.9.10')!)).toBe(true);
    expect(cidrContains(cidr, parseIp('128.0.0.1')!)).toBe(false);
    expect(cidrContains(cidr, parseIp('::ffff:127.0.0.1')!)).toBe(false);
    expect(cidrContains(parseCidr('0.0.0.0/0'), parseIp('8.8.8.8')!)).toBe(true);
    expect(cidrContains(parseCidr('2001:db8::/33'), parseIp('2001:db8:7fff::1')!)).toBe(true);
    expect(cidrContains(parseCidr('2001:db8::/33'), parseIp('2001:db8:8000::1')!)).toBe(false);
  });

  it('throws a RangeError naming the bad CIDR', () => {
    for (const text of [
      '10.0.0.0/33',
      'fd00::/129',
      '10/8',
      'x',
      '10.0.0.0/-1',
      '10.0.0.0/ 8',
      'fe80::/10%eth0',
      '',
    ]) {
      expect(() => parseCidr(text), text).toThrow(RangeError);
    }
    expect(() => parseCidr('10.0.0.0/33')).toThrow("'10.0.0.0/33' is not a CIDR");
  });
});

describe('embeddedIPv4', () => {
  it('extracts the IPv4 address of IPv4-mapped, NAT64 and 6to4 addresses only', () => {
    expect(Array.from(embeddedIPv4(parseIp('::ffff:127.0.0.1')!)?.bytes ?? [])).toEqual([127, 0, 0, 1]);
    expect(Array.from(embeddedIPv4(parseIp('64:ff9b::a00:1')!)?.bytes ?? [])).toEqual([10, 0, 0, 1]);
    expect(Array.from(embeddedIPv4(parseIp('2002:c0a8:10a::')!)?.bytes ?? [])).toEqual([192, 168, 1, 10]);
    expect(embeddedIPv4(parseIp('2001:db8::1')!)).toBeUndefined();
    expect(embeddedIPv4(parseIp('127.0.0.1')!)).toBeUndefined();
  });
});

describe('isBlockedHostname', () => {
  it('refuses cloud metadata names and their subdomains, in any case, with or without a trailing dot', () => {
    for (const name of [
      'metadata.google.internal',
      'METADATA.Google.Internal.',
      'x.metadata.google.internal',
      'metadata',
      'metadata.goog',
      'instance-data',
      'instance-data.ec2.internal',
    ]) {
      expect(isBlockedHostname(name), name).toBe(true);
    }
  });

  it('lets look-alike names through (their addresses are still checked)', () => {
    for (const name of [
      'metadata.example.com',
      'notmetadata.google.internal',
      'google.internal',
      'cdn.example',
    ]) {
      expect(isBlockedHostname(name), name).toBe(false);
    }
  });
});
