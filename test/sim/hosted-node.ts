/**
 * A {@link RawNode} ticked the way the shard host ticks its shards: while a tick would only move
 * the clock (ticksIdle: a quiet replica), ticks are left out and counted, and made up with
 * skipTicks before anything else reaches the node. The simulator drives every replica through
 * it, so its checks (safety, linearizable and lease reads, liveness) cover skipped ticks.
 */
import type { RaftConfig } from '../../src/shards/raft/config.js';
import { RaftError } from '../../src/shards/raft/errors.js';
import { RawNode } from '../../src/shards/raft/rawnode.js';
import type { ConfChange, LogIndex, Message, NodeId, Ready, Term } from '../../src/shards/raft/types.js';
import { fail } from './checks.js';

export class HostedNode extends RawNode {
  /** Ticks left out since the node became idle; made up before its next input. */
  private lag = 0;

  /** `onSkip` is called for every tick left out (for stats). */
  constructor(
    config: RaftConfig,
    private readonly onSkip: () => void,
  ) {
    super(config);
  }

  override tick(): void {
    // Idle stays idle under ticks alone, so a node with a lag is always idle here.
    if (this.ticksIdle()) {
      this.lag++;
      this.onSkip();
      return;
    }
    super.tick();
  }

  private level(): void {
    if (this.lag === 0) return;
    super.skipTicks(this.lag);
    this.lag = 0;
  }

  override step(m: Message): void {
    this.level();
    super.step(m);
  }

  override elapse(n: number): void {
    this.level();
    super.elapse(n);
  }

  override campaign(): void {
    this.level();
    super.campaign();
  }

  override wake(): void {
    this.level();
    super.wake();
  }

  override propose(data: Uint8Array): { index: LogIndex; term: Term } {
    this.level();
    return super.propose(data);
  }

  override proposeConfChange(cc: ConfChange): { index: LogIndex; term: Term } {
    this.level();
    return super.proposeConfChange(cc);
  }

  override transferLeader(to: NodeId): void {
    this.level();
    // A refused transfer changes nothing: the shard host ticks a quiet replica again only after
    // an input it sees take effect, so a refusal that woke one left it awake and unticked.
    const before = this.quietState();
    try {
      super.transferLeader(to);
    } catch (e) {
      if (e instanceof RaftError && this.quietState() !== before)
        fail('refusal-changed', `node ${this.status().id}: a refused transfer to ${to} (${e.code}) changed it: ${before} -> ${this.quietState()}`);
      throw e;
    }
  }

  private quietState(): string {
    return `quiesced=${this.isQuiesced()} ticksIdle=${this.ticksIdle()} role=${this.status().role}`;
  }

  override abortTransfer(): void {
    this.level();
    super.abortTransfer();
  }

  override readIndex(context: number, mode: 'safe' | 'lease' = 'safe'): void {
    this.level();
    super.readIndex(context, mode);
  }

  override ready(): Ready {
    this.level();
    return super.ready();
  }

  override advance(): void {
    this.level();
    super.advance();
  }
}
