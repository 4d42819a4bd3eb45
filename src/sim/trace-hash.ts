/**
 * The trace hash of one simulation: FNV-1a over everything that happened, in order (each delivered
 * message's time, addresses and bytes; each client outcome; each fault). Two runs of one seed must
 * give the same hash; a different hash means the run was not deterministic. Two independent 32-bit
 * FNV-1a lanes (different offset bases) make a 64-bit hash, printed as 16 hex digits.
 */
export class TraceHash {
  private a = 0x811c9dc5;
  private b = 0x050c5d1f;
  /** Things hashed so far. */
  events = 0;

  bytes(data: Uint8Array): this {
    let a = this.a;
    let b = this.b;
    for (let i = 0; i < data.length; i++) {
      a = Math.imul(a ^ data[i]!, 0x01000193);
      b = Math.imul(b ^ data[i]!, 0x01000193);
    }
    this.a = a >>> 0;
    this.b = b >>> 0;
    // A separator, so that ("ab", "c") and ("a", "bc") differ.
    return this.byte(0xff);
  }

  text(s: string): this {
    let a = this.a;
    let b = this.b;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      a = Math.imul(a ^ (c & 0xff), 0x01000193);
      a = Math.imul(a ^ (c >>> 8), 0x01000193);
      b = Math.imul(b ^ (c & 0xff), 0x01000193);
      b = Math.imul(b ^ (c >>> 8), 0x01000193);
    }
    this.a = a >>> 0;
    this.b = b >>> 0;
    return this.byte(0xfe);
  }

  num(n: number): this {
    return this.text(String(n));
  }

  /** Mark the end of one event. */
  end(): this {
    this.events++;
    return this.byte(0xfd);
  }

  hex(): string {
    return this.a.toString(16).padStart(8, '0') + this.b.toString(16).padStart(8, '0');
  }

  private byte(x: number): this {
    this.a = Math.imul(this.a ^ x, 0x01000193) >>> 0;
    this.b = Math.imul(this.b ^ x, 0x01000193) >>> 0;
    return this;
  }
}
