/**
 * IP ranges and host names that a user-supplied source URL must not reach (the SSRF guard of
 * `url-policy.ts`), and the small IP/CIDR parser that checks them.
 *
 * The ranges are data, reviewed like code: each entry says why it is blocked, and `ip-ranges.test.ts` pins
 * one address inside and one just outside every range. Matching is done on bytes by this module rather than
 * with `net.BlockList`, because BlockList silently treats `::ffff:a.b.c.d` as the IPv4 address: that happens
 * to be what we want, but here the embedded-IPv4 rule is explicit, covers NAT64 and 6to4 too, and is tested.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** A parsed IP address: 4 bytes (IPv4) or 16 bytes (IPv6), network order. */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
}

/** A parsed CIDR block. Host bits are masked off, so `10.1.2.3/8` is `10.0.0.0/8`. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly prefix: number;
  /** The CIDR as written in the configuration, for messages. */
  readonly text: string;
}

/** One blocked range: the CIDR, and the phrase that names it in a refusal ("a loopback address"). */
export interface BlockedRange {
  readonly cidr: string;
  /** Completes "resolves to 127.0.0.1, …": article included, e.g. 'a loopback address'. */
  readonly description: string;
  /**
   * Byte offset of an IPv4 address embedded in this IPv6 range (IPv4-mapped, NAT64, 6to4). Such a range is
   * not blocked as a whole: the embedded IPv4 address is checked against the IPv4 ranges instead, so
   * `::ffff:8.8.8.8` passes and `::ffff:127.0.0.1` is refused as loopback.
   */
  readonly embeddedIPv4At?: number;
}

/**
 * Destinations a source URL may not resolve to unless the policy allows private networks or the address is
 * in the policy's `allowedCidrs`. Where ranges nest, the longest prefix names the address (255.255.255.255 is
 * "broadcast", not "reserved").
 */
export const BLOCKED_RANGES: readonly BlockedRange[] = [
  // IPv4 (RFC 6890 special-purpose registry, the parts that are not the public internet).
  { cidr: '0.0.0.0/8', description: 'a "this network" address (0.0.0.0/8, reaches the local host)' },
  { cidr: '10.0.0.0/8', description: 'a private (RFC 1918) address' },
  { cidr: '100.64.0.0/10', description: 'a carrier-grade NAT (RFC 6598) address' },
  { cidr: '127.0.0.0/8', description: 'a loopback address' },
  { cidr: '169.254.0.0/16', description: 'a link-local/metadata address' },
  { cidr: '172.16.0.0/12', description: 'a private (RFC 1918) address' },
  { cidr: '192.0.0.0/24', description: 'an IETF protocol assignment (192.0.0.0/24) address' },
  { cidr: '192.0.2.0/24', description: 'a documentation (TEST-NET-1) address' },
  { cidr: '192.168.0.0/16', description: 'a private (RFC 1918) address' },
  { cidr: '198.18.0.0/15', description: 'a benchmarking (RFC 2544) address' },
  { cidr: '198.51.100.0/24', description: 'a documentation (TEST-NET-2) address' },
  { cidr: '203.0.113.0/24', description: 'a documentation (TEST-NET-3) address' },
  { cidr: '224.0.0.0/4', description: 'a multicast address' },
  { cidr: '240.0.0.0/4', description: 'a reserved (240.0.0.0/4) address' },
  { cidr: '255.255.255.255/32', description: 'the broadcast address' },
  // IPv6.
  { cidr: '::/128', description: 'the unspecified address (reaches the local host)' },
  { cidr: '::1/128', description: 'a loopback address' },
  // Deprecated IPv4-compatible addresses (::a.b.c.d): nothing legitimate lives there; refused outright.
  { cidr: '::/96', description: 'a deprecated IPv4-compatible IPv6 address' },
  { cidr: '::ffff:0:0/96', description: 'an IPv4-mapped address', embeddedIPv4At: 12 },
  { cidr: '64:ff9b::/96', description: 'a NAT64 address', embeddedIPv4At: 12 },
  { cidr: '64:ff9b:1::/48', description: 'a local-use NAT64 (RFC 8215) address' },
  { cidr: '100::/64', description: 'a discard-only (RFC 6666) address' },
  { cidr: '2001:db8::/32', description: 'a documentation (2001:db8::/32) address' },
  { cidr: '2002::/16', description: 'a 6to4 address', embeddedIPv4At: 2 },
  { cidr: 'fc00::/7', description: 'a unique-local (private IPv6) address' },
  { cidr: 'fe80::/10', description: 'a link-local address' },
  { cidr: 'fec0::/10', description: 'a deprecated site-local address' },
  { cidr: 'ff00::/8', description: 'a multicast address' },
];

/**
 * Cloud metadata host names, refused by name whatever they resolve to and whatever the policy allows: no
 * video source lives there, and inside a cloud VM they resolve to the metadata service (GCE's
 * `metadata.google.internal` and the bare `metadata` through the search domain, AWS's `instance-data`).
 * Subdomains are refused too.
 */
export const BLOCKED_HOSTNAMES: readonly string[] = [
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
];

/** True when `hostname` (any case, trailing dot or not) is a cloud metadata name or a subdomain of one. */
export function isBlockedHostname(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.+$/, '');
  return BLOCKED_HOSTNAMES.some((blocked) => name === blocked || name.endsWith(`.${blocked}`));
}

/**
 * Parses an IP address in its canonical textual forms: dotted-quad IPv4 (no leading zeros, no shortened or
 * numeric forms), or IPv6 with optional `::`, embedded dotted quad and `%zone` (the zone is ignored). Returns
 * undefined for anything else, brackets included.
 */
export function parseIp(text: string): IpAddress | undefined {
  if (isIPv4(text)) return { family: 4, bytes: parseIPv4(text) };
  const unzoned = text.includes('%') ? text.slice(0, text.indexOf('%')) : text;
  if (!isIPv6(unzoned)) return undefined;
  return { family: 6, bytes: parseIPv6(unzoned) };
}

function parseIPv4(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map((part) => Number(part)));
}

/** `text` has passed `isIPv6`, so it is well formed: at most one `::`, hex groups, maybe a final dotted quad. */
function parseIPv6(text: string): Uint8Array {
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const group of part.split(':')) {
      if (group.includes('.')) {
        const v4 = parseIPv4(group);
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        out.push(Number.parseInt(group, 16));
      }
    }
    return out;
  };
  const gap = text.indexOf('::');
  const head = groups(gap === -1 ? text : text.slice(0, gap));
  const tail = gap === -1 ? [] : groups(text.slice(gap + 2));
  const all = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/** Formats 4 bytes as a dotted quad. */
function formatIPv4(bytes: Uint8Array): string {
  return Array.from(bytes).join('.');
}

/**
 * Parses `a.b.c.d/n`, `x:y::/n`, or a bare address (a /32 or /128). Throws a RangeError that names the
 * input when it is not a CIDR.
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const address = parseIp(slash === -1 ? text : text.slice(0, slash));
  const prefixText = slash === -1 ? undefined : text.slice(slash + 1);
  if (!address || text.includes('%')) {
    throw new RangeError(`'${text}' is not a CIDR (expected e.g. 10.0.0.0/8 or fd00::/8)`);
  }
  const bits = address.bytes.length * 8;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) {
    throw new RangeError(`'${text}' is not a CIDR: the prefix length must be a number from 0 to ${bits}`);
  }
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) {
    throw new RangeError(`'${text}' is not a CIDR: the prefix length must be a number from 0 to ${bits}`);
  }
  const bytes = address.bytes.map((byte, i) => byte & prefixMask(prefix, i));
  return { family: address.family, bytes, prefix, text };
}

/** The mask byte at index `i` of a `prefix`-bit network mask. */
function prefixMask(prefix: number, i: number): number {
  const bitsInByte = Math.max(0, Math.min(8, prefix - 8 * i));
  return (0xff << (8 - bitsInByte)) & 0xff;
}

/** True when `address` lies inside `cidr` (same family only: an IPv4-mapped IPv6 address is not IPv4 here). */
export function cidrContains(cidr: Cidr, address: IpAddress): boolean {
  if (cidr.family !== address.family) return false;
  return address.bytes.every((byte, i) => (byte & prefixMask(cidr.prefix, i)) === cidr.bytes[i]);
}

/** Parsed once: every blocked range as a CIDR, longest prefix first so the first match is the most specific. */
const COMPILED_RANGES: readonly { range: BlockedRange; cidr: Cidr }[] = BLOCKED_RANGES.map((range) => ({
  range,
  cidr: parseCidr(range.cidr),
})).sort((a, b) => b.cidr.prefix - a.cidr.prefix);

/** Why an address is refused. */
export interface BlockedAddress {
  /** The blocked range that contains the address (for an embedding range: the one containing the IPv4). */
  readonly range: BlockedRange;
  /** The IPv4 address embedded in an IPv4-mapped, NAT64 or 6to4 address, when that is what was blocked. */
  readonly embeddedIPv4?: string;
  /** The embedding range, e.g. 'an IPv4-mapped address', when `embeddedIPv4` is set. */
  readonly via?: BlockedRange;
}

/**
 * Returns the blocked range containing `address`, or undefined when it may be reached. An IPv4-mapped,
 * NAT64 or 6to4 address is judged by the IPv4 address it embeds.
 */
export function findBlockedRange(address: IpAddress): BlockedAddress | undefined {
  const match = COMPILED_RANGES.find(({ cidr }) => cidrContains(cidr, address));
  if (!match) return undefined;
  const at = match.range.embeddedIPv4At;
  if (at === undefined) return { range: match.range };
  const ipv4 = address.bytes.slice(at, at + 4);
  const inner = findBlockedRange({ family: 4, bytes: ipv4 });
  return inner ? { range: inner.range, embeddedIPv4: formatIPv4(ipv4), via: match.range } : undefined;
}

/**
 * The IPv4 address embedded in an IPv4-mapped, NAT64 or 6to4 IPv6 address, or undefined. Used so that an
 * `allowedCidrs` entry like 127.0.0.0/8 also admits `::ffff:127.0.0.1`.
 */
export function embeddedIPv4(address: IpAddress): IpAddress | undefined {
  if (address.family !== 6) return undefined;
  for (const { range, cidr } of COMPILED_RANGES) {
    if (range.embeddedIPv4At !== undefined && cidrContains(cidr, address)) {
      return { family: 4, bytes: address.bytes.slice(range.embeddedIPv4At, range.embeddedIPv4At + 4) };
    }
  }
  return undefined;
}
