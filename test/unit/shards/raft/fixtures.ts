/**
 * Helpers for tests that drive one RawNode by hand: craft the exact messages a peer would send and
 * look at exactly what the node emits, without a network in between.
 */
import type { RaftConfig } from '../../../../src/shards/raft/config.js';
import { RaftError } from '../../../../src/shards/raft/errors.js';
import { Prng } from '../../../../src/shards/raft/prng.js';
import { RawNode } from '../../../../src/shards/raft/rawnode.js';
import { MemoryStorage } from '../../../../src/shards/raft/storage.js';
import type { Entry, EntryType as EntryTypeT, Message, MessageType as MessageTypeT, Ready } from '../../../../src/shards/raft/types.js';
import { EntryType, emptyMessage, logIndex, nodeId, term } from '../../../../src/shards/raft/types.js';

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export function ent(index: number, t: number, data = '', type: EntryTypeT = EntryType.Normal): Entry {
  return { index: logIndex(index), term: term(t), type, data: enc(data) };
}

/** A message with every field zero but those given. */
export function msg(type: MessageTypeT, from: number, to: number, t: number, rest: Partial<Omit<Message, 'type' | 'from' | 'to' | 'term'>> = {}): Message {
  return { ...emptyMessage(type, nodeId(from), nodeId(to), term(t)), ...rest };
}

export interface Solo {
  rn: RawNode;
  storage: MemoryStorage;
}

/**
 * One node of a group of `voters` (and `learners`), alone. `log` is appended to its storage and
 * `hard` overrides the persisted hard state, to start from a chosen history.
 */
export function solo(
  id: number,
  voters: number[],
  opts: Partial<RaftConfig> & { seed?: number; learners?: number[]; log?: Entry[]; termVote?: [number, number] } = {},
): Solo {
  const { seed = 7, learners = [], log = [], termVote, ...cfg } = opts;
  const storage = MemoryStorage.withMembers(voters.map(nodeId), learners.map(nodeId));
  storage.append(log);
  if (termVote) storage.setHardState({ term: term(termVote[0]), vote: nodeId(termVote[1]), commit: logIndex(1) });
  const rn = new RawNode({
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: 1,
    ...cfg,
    id: nodeId(id),
    storage,
    prng: new Prng(seed),
    applied: logIndex(1),
  });
  return { rn, storage };
}

/** The same node started again from what it persisted (its volatile state is lost). */
export function reopen(s: Solo, id: number, cfg: Partial<RaftConfig> & { seed?: number } = {}): Solo {
  const { seed = 7, ...rest } = cfg;
  const storage = s.storage.clone();
  const rn = new RawNode({
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: 1,
    ...rest,
    id: nodeId(id),
    storage,
    prng: new Prng(seed),
    applied: storage.snapshot().metadata.index,
  });
  return { rn, storage };
}

/** Takes the Ready, persists it to `s.storage` and advances; returns the Ready. */
export function persist(s: Solo): Ready {
  const rd = s.rn.ready();
  if (rd.snapshot) s.storage.applySnapshot(rd.snapshot);
  s.storage.append(rd.entries);
  if (rd.hardState) s.storage.setHardState(rd.hardState);
  s.rn.advance();
  return rd;
}

/** Drains every pending Ready (persisting each); returns them all. */
export function drain(s: Solo): Ready[] {
  const out: Ready[] = [];
  while (s.rn.hasReady()) out.push(persist(s));
  return out;
}

/** All messages of some Readies, both lists. */
export function allMessages(rds: readonly Ready[]): Message[] {
  return rds.flatMap((rd) => [...rd.messages, ...rd.messagesAfterPersist]);
}

/** Runs `f` and returns the RaftError it throws (fails the test when it throws nothing else). */
export function raftErrorOf(f: () => unknown): RaftError {
  try {
    f();
  } catch (e) {
    if (e instanceof RaftError) return e;
    throw e;
  }
  throw new Error('expected a RaftError, nothing was thrown');
}
